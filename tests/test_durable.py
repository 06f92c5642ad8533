"""Durable execution in the trace: retried nodes, nodes cut off by their ``TimeoutPolicy``, and
runs drained through ``RunControl``.

A node LangGraph retries is one task span with a ``langgraph.retry`` event per failed attempt; it
is an error only if its last attempt failed. A node cut off by a timeout ends its span at the cut,
as an error that says which limit fired, and the run's outcome is ``timeout``. A drained run's
outcome is ``drained``, not an error.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypedDict

import pytest
from helpers import (
    NO_ASYNC_CONFIG_BEFORE_311,
    by_op,
    events,
    metric_points,
    one,
    parent_of,
    run_span,
    run_spans,
    task_spans,
)
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRetryMiddleware, ToolRetryMiddleware
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphDrained, NodeTimeoutError
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import RunControl
from langgraph.types import RetryPolicy, TimeoutPolicy

import otelstream
from otelstream import names
from otelstream.options import Options
from otelstream.testing import FakeStreamingChatModel, tool_call


class State(TypedDict):
    n: int


class Flaky(Exception):
    """The app's own transient error."""


RETRY = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False, retry_on=Flaky)


def _graph(node: Any, **node_options: Any) -> Any:
    """``START → work → after → END``, with ``work`` under ``node_options``."""
    builder = StateGraph(State)
    builder.add_node("work", node, **node_options)
    builder.add_node("after", lambda state: {"n": state["n"] + 10})
    builder.add_edge(START, "work")
    builder.add_edge("work", "after")
    builder.add_edge("after", END)
    return builder.compile()


def _failing_first(failures: int) -> tuple[Any, Any, list[Flaky]]:
    """A sync and an async node that raise ``Flaky`` on their first ``failures`` attempts; the
    exceptions raised, in order."""
    raised: list[Flaky] = []

    def attempt(state: State) -> dict[str, Any]:
        if len(raised) < failures:
            raised.append(Flaky(f"attempt {len(raised) + 1} failed"))
            raise raised[-1]
        return {"n": state["n"] + 1}

    async def aattempt(state: State) -> dict[str, Any]:
        await asyncio.sleep(0)
        return attempt(state)

    return attempt, aattempt, raised


def _assert_retried(spans: Any, raised: list[Flaky], *, failed: bool) -> Any:
    (task,) = task_spans(spans, "work")
    assert task.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == len(raised) + (0 if failed else 1)
    retries = events(task, names.EVENT_RETRY)
    # Every failed attempt but a final one is a retry event, stamped when it failed.
    retried = raised[:-1] if failed else raised
    assert [e.attributes[names.LANGGRAPH_TASK_ATTEMPT] for e in retries] == list(
        range(1, len(retried) + 1)
    )
    assert [e.attributes[names.ERROR_TYPE] for e in retries] == ["Flaky"] * len(retried)
    assert [e.attributes[names.EXCEPTION_MESSAGE] for e in retries] == [str(e) for e in retried]
    assert all(task.start_time < e.timestamp < task.end_time for e in retries)
    assert [e.timestamp for e in retries] == sorted(e.timestamp for e in retries)
    if failed:
        assert not task.status.is_ok
        assert task.attributes[names.ERROR_TYPE] == "Flaky"
        (exception,) = events(task, "exception")
        assert exception.attributes["exception.message"] == str(raised[-1])
    else:
        assert task.status.is_unset
        assert names.ERROR_TYPE not in task.attributes
        assert events(task, "exception") == []
    return task


def test_node_that_fails_twice_then_succeeds_is_one_task_span(tracer_provider, spans):
    node, _, raised = _failing_first(2)
    traced = otelstream.instrument(
        _graph(node, retry_policy=RETRY), tracer_provider=tracer_provider
    )

    assert traced.invoke({"n": 0}) == {"n": 11}

    _assert_retried(spans(), raised, failed=False)
    run = run_span(spans())
    assert run.status.is_unset
    assert run.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_COMPLETED
    (after,) = task_spans(spans(), "after")
    assert after.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 1
    assert events(after, names.EVENT_RETRY) == []


async def test_node_that_fails_twice_then_succeeds_is_one_task_span_async(tracer_provider, spans):
    _, node, raised = _failing_first(2)
    traced = otelstream.instrument(
        _graph(node, retry_policy=RETRY), tracer_provider=tracer_provider
    )

    chunks = [chunk async for chunk in traced.astream({"n": 0}, stream_mode="updates")]

    assert chunks == [{"work": {"n": 1}}, {"after": {"n": 11}}]
    _assert_retried(spans(), raised, failed=False)


def test_node_that_fails_every_attempt_is_an_error_once(tracer_provider, spans):
    node, _, raised = _failing_first(99)
    traced = otelstream.instrument(
        _graph(node, retry_policy=RETRY), tracer_provider=tracer_provider
    )

    with pytest.raises(Flaky) as info:
        list(traced.stream({"n": 0}))

    assert info.value is raised[-1]  # the app's exception, unchanged
    assert len(raised) == 3
    _assert_retried(spans(), raised, failed=True)
    run = run_span(spans())
    assert run.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_ERROR
    assert task_spans(spans(), "after") == []


async def test_node_that_fails_every_attempt_is_an_error_once_async(tracer_provider, spans):
    _, node, raised = _failing_first(99)
    traced = otelstream.instrument(
        _graph(node, retry_policy=RETRY), tracer_provider=tracer_provider
    )

    with pytest.raises(Flaky) as info:
        await traced.ainvoke({"n": 0})

    assert info.value is raised[-1]
    _assert_retried(spans(), raised, failed=True)


def test_each_attempt_s_model_call_is_a_child_of_the_one_task_span(tracer_provider, spans):
    """A retried node's work (here, an LLM call per attempt) all hangs under its one span."""
    model = FakeStreamingChatModel(responses=[AIMessage("first"), AIMessage("second")])
    attempts: list[int] = []

    def ask(state: State) -> dict[str, Any]:
        model.invoke([HumanMessage("hi")])
        attempts.append(1)
        if len(attempts) == 1:
            raise Flaky("the answer was not good enough")
        return {"n": 1}

    traced = otelstream.instrument(_graph(ask, retry_policy=RETRY), tracer_provider=tracer_provider)
    traced.invoke({"n": 0})

    (task,) = task_spans(spans(), "work")
    chats = by_op(spans(), names.OP_CHAT)
    assert len(chats) == 2
    assert [parent_of(spans(), chat) for chat in chats] == [task, task]
    (retry,) = events(task, names.EVENT_RETRY)
    assert chats[0].end_time <= retry.timestamp <= chats[1].start_time


def test_retries_in_parallel_branches_keep_their_own_spans(tracer_provider, spans):
    """Two tasks of one step, one retried: each keeps its own span and attempt count."""
    _, _, raised = _failing_first(0)

    def flaky(state: State) -> dict[str, Any]:
        if not raised:
            raised.append(Flaky("once"))
            raise raised[-1]
        return {}

    builder = StateGraph(State)
    builder.add_node("flaky", flaky, retry_policy=RETRY)
    builder.add_node("steady", lambda state: {})
    builder.add_edge(START, "flaky")
    builder.add_edge(START, "steady")
    traced = otelstream.instrument(builder.compile(), tracer_provider=tracer_provider)

    traced.invoke({"n": 0})

    (flaky_span,) = task_spans(spans(), "flaky")
    (steady,) = task_spans(spans(), "steady")
    assert flaky_span.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 2
    assert steady.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 1
    assert events(steady, names.EVENT_RETRY) == []


def test_retried_node_inside_a_subgraph(tracer_provider, spans):
    node, _, raised = _failing_first(1)
    inner = _graph(node, retry_policy=RETRY)
    builder = StateGraph(State)
    builder.add_node("outer", inner)
    builder.add_edge(START, "outer")
    traced = otelstream.instrument(builder.compile(), tracer_provider=tracer_provider)

    traced.invoke({"n": 0})

    task = _assert_retried(spans(), raised, failed=False)
    assert parent_of(spans(), task) == one(task_spans(spans()), "outer")


# ---- timeouts -------------------------------------------------------------------------------


async def _hangs(state: State) -> dict[str, Any]:
    await asyncio.sleep(30)  # far past any limit below: LangGraph cancels it
    return {"n": 1}


@pytest.mark.parametrize(
    ("policy", "kind", "limit"),
    [
        (TimeoutPolicy(run_timeout=0.2), "run", 0.2),
        (TimeoutPolicy(idle_timeout=0.2), "idle", 0.2),
        (TimeoutPolicy(run_timeout=0.3, idle_timeout=5), "run", 0.3),
    ],
)
async def test_node_cut_off_by_its_timeout(
    tracer_provider, meter_provider, metric_reader, spans, policy, kind, limit
):
    traced = otelstream.instrument(
        _graph(_hangs, timeout=policy),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )

    with pytest.raises(NodeTimeoutError) as info:
        await traced.ainvoke({"n": 0})

    assert info.value.kind == kind
    (task,) = task_spans(spans(), "work")
    assert not task.status.is_ok
    assert task.attributes[names.ERROR_TYPE] == "NodeTimeoutError"
    assert task.attributes[names.LANGGRAPH_TIMEOUT_KIND] == kind
    assert task.attributes[names.LANGGRAPH_TIMEOUT_SECONDS] == limit
    # The span ends at the cut, not when the cancelled node would have returned.
    assert limit <= (task.end_time - task.start_time) / 1e9 < 30
    run = run_span(spans())
    assert run.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_TIMEOUT
    assert run.attributes[names.ERROR_TYPE] == "NodeTimeoutError"
    assert not run.status.is_ok
    (point,) = metric_points(metric_reader)[names.METRIC_WORKFLOW_DURATION]
    assert point.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_TIMEOUT
    assert point.attributes[names.ERROR_TYPE] == "NodeTimeoutError"


async def test_timed_out_attempt_then_retried_in_time(tracer_provider, spans):
    """The first attempt hangs and is cut off; LangGraph retries it and the second is quick."""
    attempts: list[int] = []

    async def slow_once(state: State) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(30)
        return {"n": 1}

    retry = RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False)
    traced = otelstream.instrument(
        _graph(slow_once, timeout=TimeoutPolicy(idle_timeout=0.2), retry_policy=retry),
        tracer_provider=tracer_provider,
    )

    assert await traced.ainvoke({"n": 0}) == {"n": 11}
    await asyncio.sleep(0.05)  # the cancelled first attempt reports its cancellation late

    (task,) = task_spans(spans(), "work")
    assert task.status.is_unset
    assert task.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 2
    assert names.LANGGRAPH_TIMEOUT_KIND not in task.attributes
    (retry_event,) = events(task, names.EVENT_RETRY)
    assert retry_event.attributes[names.ERROR_TYPE] == "NodeTimeoutError"
    assert retry_event.attributes[names.LANGGRAPH_TIMEOUT_KIND] == "idle"
    assert run_span(spans()).attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_COMPLETED


async def test_observer_already_in_the_config_still_sees_every_attempt(tracer_provider, spans):
    """A LangGraph server watches timed attempts through the same config key: it keeps seeing
    them all when the run is traced."""
    seen: list[Any] = []

    async def quick(state: State) -> dict[str, Any]:
        return {"n": 1}

    config = {"configurable": {"__pregel_timed_attempt_observer": seen.append}}
    graph = _graph(quick, timeout=TimeoutPolicy(run_timeout=5))
    await graph.ainvoke({"n": 0}, config)
    bare = [(e.event, e.status) for e in seen]
    seen.clear()

    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    await traced.ainvoke({"n": 0}, config)

    assert [(e.event, e.status) for e in seen] == bare == [("start", None), ("finish", "success")]


# ---- drain ----------------------------------------------------------------------------------


def test_drained_run_is_its_own_outcome_and_not_an_error(
    tracer_provider, meter_provider, metric_reader, spans
):
    control = RunControl()

    def first(state: State) -> dict[str, Any]:
        control.request_drain("deploy")
        return {"n": 1}

    graph = _graph(first)
    graph.checkpointer = InMemorySaver()
    traced = otelstream.instrument(
        graph, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    config = {"configurable": {"thread_id": "drained"}}

    with pytest.raises(GraphDrained):
        list(traced.stream({"n": 0}, config, control=control))

    (run,) = run_spans(spans())
    assert run.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_DRAINED
    assert run.status.is_unset
    assert [t.attributes[names.LANGGRAPH_NODE] for t in task_spans(spans())] == ["work"]
    (point,) = metric_points(metric_reader)[names.METRIC_WORKFLOW_DURATION]
    assert point.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_DRAINED
    assert names.ERROR_TYPE not in point.attributes
    (paused,) = events(run, names.EVENT_PAUSED)
    # The drained thread resumes where it stopped, and the run that resumes it links back.
    assert traced.invoke(None, config) == {"n": 11}
    resumed = run_spans(spans())[-1]
    (link,) = resumed.links
    assert link.context.span_id == run.context.span_id
    assert link.attributes[names.OTELSTREAM_LINK_REASON] == names.LINK_REASON_RESUME
    assert events(resumed, names.EVENT_RESUMED)


# ---- every call path ------------------------------------------------------------------------


def _drive(traced: Any, path: str, graph_input: Any) -> None:
    if path == "stream_events_v3":
        for _ in traced.stream_events(graph_input, version="v3"):
            pass
    elif path == "astream_events":

        async def consume() -> None:
            async for _ in traced.astream_events(graph_input, version="v2"):
                pass

        asyncio.run(consume())
    elif path == "ainvoke":
        asyncio.run(traced.ainvoke(graph_input))
    else:
        getattr(traced, path)(graph_input)


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "astream_events", "stream_events_v3"])
def test_retries_are_recorded_on_every_call_path(tracer_provider, spans, path):
    node, _, raised = _failing_first(2)
    traced = otelstream.instrument(
        _graph(node, retry_policy=RETRY), tracer_provider=tracer_provider
    )

    _drive(traced, path, {"n": 0})

    _assert_retried(spans(), raised, failed=False)


def test_retried_functional_api_task(tracer_provider, spans):
    """A Functional API ``@task`` with a retry policy is one task span too."""
    raised: list[Flaky] = []

    @task(retry_policy=RETRY)
    def fetch(n: int) -> int:
        if len(raised) < 2:
            raised.append(Flaky(f"attempt {len(raised) + 1} failed"))
            raise raised[-1]
        return n + 1

    @entrypoint()
    def pipeline(n: int) -> int:
        return fetch(n).result()

    traced = otelstream.instrument(pipeline, tracer_provider=tracer_provider)

    assert traced.invoke(1) == 2

    (span,) = task_spans(spans(), "fetch")
    assert span.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 3
    assert len(events(span, names.EVENT_RETRY)) == 2
    assert span.status.is_unset


@NO_ASYNC_CONFIG_BEFORE_311
async def test_functional_api_task_cut_off_by_its_timeout(tracer_provider, spans):
    @task(timeout=TimeoutPolicy(run_timeout=0.2))
    async def hang(n: int) -> int:
        await asyncio.sleep(30)
        return n

    @entrypoint()
    async def pipeline(n: int) -> int:
        return await hang(n)

    traced = otelstream.instrument(pipeline, tracer_provider=tracer_provider)

    with pytest.raises(NodeTimeoutError):
        await traced.ainvoke(1)

    (span,) = task_spans(spans(), "hang")
    assert span.attributes[names.LANGGRAPH_TIMEOUT_KIND] == "run"
    assert not span.status.is_ok
    assert run_span(spans()).attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_TIMEOUT


# ---- retries inside a tool or a model stay their own spans ------------------------------------


def test_tool_retry_middleware_calls_are_tool_spans_of_their_own(tracer_provider, spans):
    """``ToolRetryMiddleware`` retries inside one task: each try is an ``execute_tool`` span, and
    the task is not a retried node (LangGraph ran it once)."""
    tries: list[int] = []

    @tool
    def lookup(query: str) -> str:
        """Look something up; the first try fails."""
        tries.append(1)
        if len(tries) == 1:
            msg = "the lookup service hiccupped"
            raise ConnectionError(msg)
        return "found"

    model = FakeStreamingChatModel(
        responses=[tool_call("lookup", {"query": "q"}, call_id="call_1"), AIMessage("Done.")]
    )
    agent = create_agent(
        model,
        tools=[lookup],
        middleware=[ToolRetryMiddleware(max_retries=2, initial_delay=0.01, jitter=False)],
        name="helper",
    )
    traced = otelstream.instrument(agent, tracer_provider=tracer_provider)

    traced.invoke({"messages": [HumanMessage("look it up")]})

    first, second = by_op(spans(), names.OP_EXECUTE_TOOL)
    assert first.attributes[names.ERROR_TYPE] == "ConnectionError"
    assert second.status.is_unset
    assert parent_of(spans(), first) == parent_of(spans(), second)
    (tools_task,) = task_spans(spans(), "tools")
    assert tools_task.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 1
    assert events(tools_task, names.EVENT_RETRY) == []


class _FailsOnce(FakeStreamingChatModel):
    """A scripted model whose first call fails, the way a rate-limited provider does."""

    def _next(self) -> AIMessage:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return super()._next()


def test_model_retry_middleware_calls_are_chat_spans_of_their_own(tracer_provider, spans):
    """``ModelRetryMiddleware`` retries inside the model node: each try is a ``chat`` span."""
    model = _FailsOnce(responses=[AIMessage("Done.")], error=ConnectionError("rate limited"))
    agent = create_agent(
        model,
        tools=[],
        middleware=[ModelRetryMiddleware(max_retries=2, initial_delay=0.01, jitter=False)],
        name="helper",
    )
    traced = otelstream.instrument(agent, tracer_provider=tracer_provider)

    traced.invoke({"messages": [HumanMessage("hi")]})

    first, second = by_op(spans(), names.OP_CHAT)
    assert first.attributes[names.ERROR_TYPE] == "ConnectionError"
    assert second.status.is_unset
    (model_task,) = task_spans(spans(), "model")
    assert parent_of(spans(), first) == parent_of(spans(), second) == model_task
    assert model_task.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 1


def test_retried_task_is_reported_stalled_once_for_its_running_time(tracer_provider, spans):
    """A task is one span however many attempts it takes: past its running-time threshold it is
    reported once, not again for each attempt that follows."""
    attempts: list[int] = []

    def slow_flaky(state: State) -> dict[str, Any]:
        attempts.append(1)
        time.sleep(0.4)  # far past the threshold below, in each attempt
        if len(attempts) == 1:
            raise Flaky("slow and failed")
        return {"n": 1}

    traced = otelstream.instrument(
        _graph(slow_flaky, retry_policy=RETRY),
        tracer_provider=tracer_provider,
        options=Options(task_stall_threshold=0.1),
    )

    traced.invoke({"n": 0})

    (task,) = [s for s in task_spans(spans(), "work") if not s.name.startswith("stalled ")]
    assert task.attributes[names.LANGGRAPH_TASK_ATTEMPTS] == 2
    markers = [s for s in spans() if s.name == f"stalled {task.name}"]
    assert [m.attributes[names.OTELSTREAM_STALL_REASON] for m in markers] == ["running"]
    assert task.attributes[names.OTELSTREAM_STALLED] is True
