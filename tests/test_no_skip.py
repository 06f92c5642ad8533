"""The suite's no-skip plugin (tests/no_skip.py), run on a throwaway test file in a child pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """A child pytest with only the no-skip plugin, on ``source``, away from this repo's config."""
    (tmp_path / "test_sample.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no_skip", "-p", "no:cacheprovider"]
        + ["-p", "no:asyncio"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "source",
    [
        "import pytest\n\ndef test_skips():\n    pytest.skip('promtool missing')\n",
        "import pytest\n\n@pytest.mark.skip(reason='promtool missing')\n"
        "def test_marked():\n    pass\n",
        "import pytest\n\n@pytest.mark.skipif(True, reason='promtool missing')\n"
        "def test_marked():\n    pass\n",
    ],
    ids=["call", "mark", "skipif"],
)
def test_a_skipped_test_fails_the_run_with_its_reason(tmp_path: Path, source: str) -> None:
    completed = run_pytest(tmp_path, source)
    assert completed.returncode == 1, completed.stdout
    # A skip in the test body fails it; a skip mark acts at setup, so it is reported as an error.
    summary = completed.stdout.splitlines()[-1]
    assert "1 failed" in summary or "1 error" in summary, summary
    assert "skipped" not in summary
    assert "allows no skip: promtool missing" in completed.stdout


def test_a_module_level_skip_fails_collection(tmp_path: Path) -> None:
    completed = run_pytest(
        tmp_path, "import pytest\n\npytest.skip('no server', allow_module_level=True)\n"
    )
    assert completed.returncode != 0, completed.stdout
    assert "allows no skip: no server" in completed.stdout


def test_passing_and_strict_xfail_tests_are_untouched(tmp_path: Path) -> None:
    completed = run_pytest(
        tmp_path,
        "import pytest\n\ndef test_ok():\n    pass\n\n"
        "@pytest.mark.xfail(strict=True)\ndef test_known_bug():\n    assert False\n",
    )
    assert completed.returncode == 0, completed.stdout
    assert "1 passed, 1 xfailed" in completed.stdout
