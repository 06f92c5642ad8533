"""A pytest plugin that turns every skip into a failure, so a missing tool or server cannot hide.

``make test`` provisions everything the suite needs (``scripts/provision.sh``). A test that would
skip therefore means a provisioning gap, and it must fail the run rather than pass it with fewer
tests than it claims. Strict xfails are left alone: they are reported as xfailed, not skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

NO_SKIP = "skipped, and this suite allows no skip"


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    # A skip's longrepr is (path, lineno, reason); keep the reason, it says what was missing.
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"{NO_SKIP}: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped:
        _fail(report)
    return report
