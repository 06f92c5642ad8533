"""otelstream's own logger: structlog events handed to the stdlib logger ``otelstream``.

A library must not print to the app's stdout, so events go to ``logging.getLogger("otelstream")``,
where the app's logging configuration decides (unconfigured, warnings reach stderr). They are
rendered with the app's structlog processors, or with ``otelstream.export.configure_logging``'s.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

logger: Any = structlog.wrap_logger(
    logging.getLogger("otelstream"), wrapper_class=structlog.stdlib.BoundLogger
)
