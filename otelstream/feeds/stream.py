"""The stream wrapper: yields exactly what the bare graph yields and always finishes its run.

Each traced call is a generator that opens the run when the caller first pulls from it, yields
exactly the chunks LangGraph yields (reading only interrupts from them), and finishes the run
exactly once on every exit path: exhausted (``completed`` or ``interrupted``), raised
(``error``, the exception re-raised unchanged), closed or broken out of (``cancelled``; the
LangGraph generator is closed too) and task cancellation (``cancelled``). No span is ever made
current, so nothing leaks into the caller's context between chunks.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphDrained, NodeTimeoutError
from opentelemetry import metrics, trace

from otelstream import __version__, _internal, names
from otelstream._watchdog import Watchdog
from otelstream.feeds.attempts import observe_attempts
from otelstream.feeds.callbacks import SpanCallbackHandler, StreamingSpanCallbackHandler
from otelstream.feeds.checkpoints import trace_checkpoints
from otelstream.feeds.request import Plan, add_handler, plan
from otelstream.feeds.server import parent_from_metadata, run_id
from otelstream.feeds.writer import tap_writes
from otelstream.options import Options
from otelstream.record.instruments import Instruments
from otelstream.record.run import RunRecorder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


class Tracing:
    """What every traced call of one ``instrument()`` (or instrumentor) shares."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        options: Options | None,
    ) -> None:
        if options is not None and not isinstance(options, Options):
            msg = f"options must be an otelstream.Options, not {type(options).__qualname__}"
            raise TypeError(msg)
        self.options = options if options is not None else Options()
        self.tracer = trace.get_tracer(
            "otelstream", __version__, tracer_provider, schema_url=_SCHEMA_URL
        )
        meter = metrics.get_meter("otelstream", __version__, meter_provider, schema_url=_SCHEMA_URL)
        self.instruments = Instruments(meter)
        self.watchdog = Watchdog(self.options, meter)
        self._handler_type = (
            StreamingSpanCallbackHandler if self.options.trace_chunks else SpanCallbackHandler
        )

    def _plan(self, graph: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Plan | None:
        try:
            return plan(graph, args, kwargs, SpanCallbackHandler)
        except Exception:
            _internal.internal_error("plan")
            return None

    def _start(self, plan_: Plan, graph: Any) -> tuple[RunRecorder, dict[str, Any]]:
        recorder = RunRecorder(
            self.tracer,
            self.instruments,
            self.options,
            name=plan_.name,
            agent=plan_.agent,
            conversation_id=plan_.conversation_id,
            parent=parent_from_metadata(plan_.effective_config),
        )
        run_id_ = run_id(plan_.effective_config)
        if run_id_ is not None:
            recorder.span.set_attribute(names.LANGGRAPH_RUN_ID, run_id_)
        self.watchdog.watch(recorder)
        config = add_handler(plan_, self._handler_type(recorder))
        if plan_.taps_writes:
            # What otelstream lends the run through its configurable: the write tap's runtime,
            # the timed-attempt observer, the traced checkpointer.
            configurable = dict(config.get("configurable") or {})
            tap_writes(configurable, recorder)
            observe_attempts(configurable, recorder)
            trace_checkpoints(configurable, graph, plan_.input, plan_.effective_config, recorder)
            config = {**config, "configurable": configurable}
        return recorder, config

    def _finish(self, recorder: RunRecorder, outcome: str, error: BaseException | None) -> None:
        try:
            recorder.finish(outcome, error)
        except Exception:
            _internal.internal_error("finish")
        finally:
            self.watchdog.forget(recorder)

    def stream(
        self,
        graph: Any,
        stream: Callable[..., Iterator[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Iterator[Any]:
        """``stream(*args, **kwargs)`` on ``graph``, traced."""
        plan_ = self._plan(graph, args, kwargs)
        if plan_ is None:
            return stream(*args, **kwargs)
        return self._traced(graph, stream, plan_)

    def astream(
        self,
        graph: Any,
        astream: Callable[..., AsyncIterator[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> AsyncIterator[Any]:
        """``astream(*args, **kwargs)`` on ``graph``, traced."""
        plan_ = self._plan(graph, args, kwargs)
        if plan_ is None:
            return astream(*args, **kwargs)
        return self._atraced(graph, astream, plan_)

    def _traced(
        self, graph: Any, stream: Callable[..., Iterator[Any]], plan_: Plan
    ) -> Iterator[Any]:
        recorder: RunRecorder | None = None
        try:
            recorder, config = self._start(plan_, graph)
        except Exception:
            _internal.internal_error("start")
            config = plan_.config
        inner = stream(plan_.input, config, **plan_.kwargs)
        check = plan_.interrupt_check() if recorder is not None else None
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            # The caller's chunks, exactly as LangGraph yields them: nothing is added or taken.
            if check is None:
                yield from inner
            else:
                for item in inner:
                    if check(item):
                        _interrupted(recorder)
                    yield item
        except GeneratorExit:
            outcome = names.OUTCOME_CANCELLED
            close = getattr(inner, "close", None)
            if close is not None:
                close()  # LangGraph's close waits for in-flight tasks, as bare does
            raise
        except BaseException as exc:
            outcome, error = failed_outcome(exc)
            raise
        finally:
            if recorder is not None:
                self._finish(recorder, outcome, error)

    async def _atraced(
        self, graph: Any, astream: Callable[..., AsyncIterator[Any]], plan_: Plan
    ) -> AsyncIterator[Any]:
        recorder: RunRecorder | None = None
        try:
            recorder, config = self._start(plan_, graph)
        except Exception:
            _internal.internal_error("start")
            config = plan_.config
        inner = astream(plan_.input, config, **plan_.kwargs)
        check = plan_.interrupt_check() if recorder is not None else None
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            async for item in inner:
                if check is not None and check(item):
                    _interrupted(recorder)
                yield item
        except GeneratorExit:
            outcome = names.OUTCOME_CANCELLED
            await aclose(inner)
            raise
        except BaseException as exc:
            outcome, error = failed_outcome(exc)
            if outcome == names.OUTCOME_CANCELLED:
                await aclose(inner)
            raise
        finally:
            if recorder is not None:
                self._finish(recorder, outcome, error)


def _interrupted(recorder: RunRecorder | None) -> None:
    """The caller's chunk showed the run's interrupt (static ones show nowhere else)."""
    if recorder is not None:
        recorder.interrupted = True


def failed_outcome(exc: BaseException) -> tuple[str, BaseException | None]:
    """A run's outcome for an exception that ended its stream: cancellation is not an error, a
    drain (``RunControl.request_drain``) neither; a node cut off by its ``TimeoutPolicy`` is."""
    if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
        return names.OUTCOME_CANCELLED, None
    if isinstance(exc, GraphDrained):
        return names.OUTCOME_DRAINED, None
    if isinstance(exc, NodeTimeoutError):
        return names.OUTCOME_TIMEOUT, exc
    return names.OUTCOME_ERROR, exc


async def aclose(inner: AsyncIterator[Any]) -> None:
    """Close an async iterator that may not have ``aclose``."""
    aclose = getattr(inner, "aclose", None)
    if aclose is not None:
        await aclose()
