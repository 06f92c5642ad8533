"""``OtelStreamInstrumentor``: trace every compiled LangGraph graph, with no change to app code.

Registered under the ``opentelemetry_instrumentor`` entry point, so ``opentelemetry-instrument
python app.py`` enables it. It wraps ``Pregel.stream`` and ``Pregel.astream``, which LangGraph's
``invoke`` and ``ainvoke`` call, so all four are traced. A graph run inside a traced run (a
subgraph node, or a node that calls ``other_graph.invoke``) is seen through the outer run's
callbacks and is not traced a second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph.pregel.main import Pregel
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from otelstream.feeds.once import suppress
from otelstream.feeds.stream import Tracing

if TYPE_CHECKING:
    from collections.abc import Collection

_MODULE = "langgraph.pregel.main"


class OtelStreamInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces ``stream``/``astream``/``invoke``/``ainvoke`` of every compiled graph.

    ``instrument(tracer_provider=..., meter_provider=..., options=...)`` starts tracing;
    ``uninstrument()`` restores LangGraph's own methods.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("langgraph >= 1.2",)

    def _instrument(self, **kwargs: Any) -> None:
        tracing = Tracing(
            kwargs.get("tracer_provider"), kwargs.get("meter_provider"), kwargs.get("options")
        )

        def stream(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return tracing.stream(instance, wrapped, tuple(args), dict(kw))

        def astream(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return tracing.astream(instance, wrapped, tuple(args), dict(kw))

        # A v3 run is traced through its inner stream/astream call; an otelstream transformer
        # registered on the graph must then stay passive, so the run is not traced twice.
        def stream_v3(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            with suppress():
                return wrapped(*args, **kw)

        async def astream_v3(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            with suppress():
                return await wrapped(*args, **kw)

        wrap_function_wrapper(_MODULE, "Pregel.stream", stream)
        wrap_function_wrapper(_MODULE, "Pregel.astream", astream)
        wrap_function_wrapper(_MODULE, "Pregel._pregel_stream_v3", stream_v3)
        wrap_function_wrapper(_MODULE, "Pregel._apregel_stream_v3", astream_v3)

    def _uninstrument(self, **kwargs: Any) -> None:
        for method in ("stream", "astream", "_pregel_stream_v3", "_apregel_stream_v3"):
            unwrap(Pregel, method)
