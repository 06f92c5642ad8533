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

        wrap_function_wrapper(_MODULE, "Pregel.stream", stream)
        wrap_function_wrapper(_MODULE, "Pregel.astream", astream)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(Pregel, "stream")
        unwrap(Pregel, "astream")
