"""``python -m otelstream.cli``: the same as the ``otelstream`` command."""

from __future__ import annotations

import sys

from otelstream.cli import main

sys.exit(main())
