"""The stream wrapper: yields exactly what the bare graph yields and always finishes its run.

Each traced call is a generator that opens the run when the caller first pulls from it, feeds
every internal chunk to the recorder, yields the caller's chunks, and finishes the run exactly
once on every exit path: exhausted (``completed`` or ``interrupted``), raised (``error``, the
exception re-raised unchanged), closed or broken out of (``cancelled``; the LangGraph generator is
closed too) and task cancellation (``cancelled``). No span is ever made current, so nothing leaks
into the caller's context between chunks.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from otelstream import __version__, _internal, names
from otelstream._callbacks import SpanCallbackHandler, StreamingSpanCallbackHandler
from otelstream._instruments import Instruments
from otelstream._record import RunRecorder
from otelstream._request import SKIP, Plan, add_handler, plan
from otelstream._server import parent_from_metadata, run_id
from otelstream._watchdog import Watchdog
from otelstream._work import ToolMark
from otelstream.options import Options

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

    def _start(self, graph: Any, plan_: Plan) -> tuple[RunRecorder, dict[str, Any]]:
        recorder = RunRecorder(
            self.tracer,
            self.instruments,
            self.options,
            agent_name=plan_.agent_name or str(getattr(graph, "name", None) or "LangGraph"),
            conversation_id=plan_.conversation_id,
            parent=parent_from_metadata(plan_.effective_config),
            sees_nested=plan_.sees_nested,
            reads_tasks=plan_.reads_tasks,
            marks_tools=plan_.marks_tools,
        )
        run_id_ = run_id(plan_.effective_config)
        if run_id_ is not None:
            recorder.span.set_attribute(names.LANGGRAPH_RUN_ID, run_id_)
        self.watchdog.watch(recorder)
        return recorder, add_handler(plan_, self._handler_type(recorder))

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
            recorder, config = self._start(graph, plan_)
        except Exception:
            _internal.internal_error("start")
            config = plan_.config
        inner = stream(plan_.input, config, **plan_.kwargs)
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            if plan_.tagged_pairs:
                # The common case, on the hot path: LangGraph's (mode, chunk) pair is the very
                # chunk the caller asked for, so it is passed on as it is.
                keep = frozenset(plan_.user_mode)  # a list of modes: membership is the same
                for item in inner:
                    mode = item[0]
                    if (
                        mode in _WATCHED
                        and recorder is not None
                        and _observe(recorder, (), mode, item[1])
                    ):
                        continue
                    if mode in keep:
                        yield item
            else:
                for item in inner:
                    ns, mode, payload = plan_.split(item)
                    if (
                        mode in _WATCHED
                        and recorder is not None
                        and _observe(recorder, ns, mode, payload)
                    ):
                        continue
                    out = plan_.reshape(item, ns, mode, payload)
                    if out is not SKIP:
                        yield out
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
            recorder, config = self._start(graph, plan_)
        except Exception:
            _internal.internal_error("start")
            config = plan_.config
        inner = astream(plan_.input, config, **plan_.kwargs)
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            if plan_.tagged_pairs:  # see _traced
                keep = frozenset(plan_.user_mode)
                async for item in inner:
                    mode = item[0]
                    if (
                        mode in _WATCHED
                        and recorder is not None
                        and _observe(recorder, (), mode, item[1])
                    ):
                        continue
                    if mode in keep:
                        yield item
            else:
                async for item in inner:
                    ns, mode, payload = plan_.split(item)
                    if (
                        mode in _WATCHED
                        and recorder is not None
                        and _observe(recorder, ns, mode, payload)
                    ):
                        continue
                    out = plan_.reshape(item, ns, mode, payload)
                    if out is not SKIP:
                        yield out
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


_WATCHED = frozenset({"tasks", "custom", "updates", "values"})


def _observe(recorder: RunRecorder, ns: tuple[str, ...], mode: str, payload: Any) -> bool:
    """Feed one internal chunk of a watched mode to the recorder; ``True`` for otelstream's own
    chunks (a ``ToolMark``), which the caller must never see."""
    if mode == "custom" and type(payload) is ToolMark:
        try:
            recorder.tool_mark(payload)
        except Exception:
            _internal.internal_error("observe")
        return True
    try:
        if mode == "custom":
            recorder.custom(ns, payload)
        elif mode == "tasks":
            recorder.stream_task(ns, payload)
        elif not ns and isinstance(payload, dict) and "__interrupt__" in payload:
            # A static interrupt (interrupt_before/after) reaches only updates and values.
            recorder.interrupted = True
    except Exception:
        _internal.internal_error("observe")
    return False


def failed_outcome(exc: BaseException) -> tuple[str, BaseException | None]:
    """A run's outcome for an exception that ended its stream: cancellation is not an error."""
    if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
        return names.OUTCOME_CANCELLED, None
    return names.OUTCOME_ERROR, exc


async def aclose(inner: AsyncIterator[Any]) -> None:
    """Close an async iterator that may not have ``aclose``."""
    aclose = getattr(inner, "aclose", None)
    if aclose is not None:
        await aclose()
