"""How otelstream treats its own failures: never the app's problem, always the test suite's.

A bug inside otelstream must never break, slow or change the traced app, so production code logs
it at debug level and carries on. Under otelstream's own test suite the same bug must fail the
test, so ``strict`` mode re-raises (the pattern of logfire's ``log_internal_error``).
"""

from __future__ import annotations

import os
import sys

from otelstream._log import logger as _log

_strict = os.environ.get("OTELSTREAM_STRICT", "").strip().lower() in {"1", "true", "yes"}


def set_strict(value: bool) -> None:
    """Re-raise internal errors (``True``, for tests) or log and swallow them (``False``)."""
    global _strict  # noqa: PLW0603 - a process-wide debug switch, set by tests only
    _strict = value


def is_strict() -> bool:
    """Whether internal errors are re-raised."""
    return _strict


_thread_errors: list[BaseException] = []


def record_thread_error() -> None:
    """Keep the exception being handled on a background thread, for the test suite to raise.

    Call only from an ``except`` block.
    """
    error = sys.exc_info()[1]
    if error is not None:
        _thread_errors.append(error)


def take_thread_errors() -> list[BaseException]:
    """The internal errors background threads met since the last call."""
    errors = list(_thread_errors)
    _thread_errors.clear()
    return errors


def internal_error(where: str) -> None:
    """Report the exception being handled as an otelstream bug; re-raise it in strict mode.

    Call only from an ``except`` block.
    """
    if _strict:
        raise  # noqa: PLE0704 - re-raises the exception being handled by the caller
    _log.debug("otelstream_internal_error", where=where, exc_info=True)
