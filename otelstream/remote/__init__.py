"""Tracing LangGraph runs that execute on a LangGraph server.

* ``instrument_remote(remote_graph)`` traces a ``RemoteGraph`` from the client that calls it.
* ``python -m otelstream.remote.sidecar --url URL`` (``sidecar.main``) follows every run on a
  server and turns each into one trace.

Both rebuild the in-process span model from what the server streams; see ``_feed``.
"""

from __future__ import annotations

from otelstream.remote._feed import RemoteError
from otelstream.remote._graph import InstrumentedRemoteGraph, instrument_remote

__all__ = ["InstrumentedRemoteGraph", "RemoteError", "instrument_remote"]
