"""otelstream's own logger: structlog events handed to the stdlib logger ``otelstream``.

A library must not print to the app's stdout, so events go to ``logging.getLogger("otelstream")``,
where the app's logging configuration decides (unconfigured, warnings reach stderr). They are
rendered with the app's structlog processors, or with ``otelstream.export.configure_logging``'s.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


class _Logger(structlog.stdlib.BoundLogger):
    """Checks the stdlib level first: a debug event the app does not log costs nothing (the
    processors would otherwise render it, traceback included, before the stdlib drops it)."""

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return super().info(event, *args, **kw)


logger: Any = structlog.wrap_logger(logging.getLogger("otelstream"), wrapper_class=_Logger)
