"""Shared pieces of the reliability proofs: graphs, hostile peers on loopback, span-tree checks."""

from __future__ import annotations

import gc
import socket
import struct
import threading
import time
from collections import defaultdict
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import grpc
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from otelstream import names
from otelstream.record.run import RunRecorder
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


# ---- a graph with parallel tools whose ids name the run ----------------------------------------


@tool
def echo(key: str) -> str:
    """Echo the run key; writes a custom event naming it."""
    get_stream_writer()({"echo": key})
    return f"echo {key}"


@tool
def double(key: str) -> str:
    """Double the run key."""
    return key + key


def parallel_tools_graph() -> Any:
    """``agent -> ToolNode(echo, double) -> agent``: two parallel tool calls whose ids carry the
    run key (the human message), so every span can be traced back to the run that made it."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="thinking about it")])

    def agent(state: MessagesState) -> dict[str, Any]:
        answer = model.invoke(state["messages"])
        return {"messages": [_next_message(state, answer)]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        answer = await model.ainvoke(state["messages"])
        return {"messages": [_next_message(state, answer)]}

    from langchain_core.runnables import RunnableLambda  # noqa: PLC0415 - only this graph

    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))
    builder.add_node("tools", ToolNode([echo, double]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="parallel_tools")


def _next_message(state: MessagesState, answer: Any) -> AIMessage:
    if isinstance(state["messages"][-1], ToolMessage):
        return AIMessage(content=f"{answer.content} done")
    key = str(state["messages"][0].content)
    return AIMessage(
        content=str(answer.content),
        tool_calls=[
            {"name": "echo", "args": {"key": key}, "id": f"{key}-echo"},
            {"name": "double", "args": {"key": key}, "id": f"{key}-double"},
        ],
    )


def run_input(key: str) -> dict[str, Any]:
    """The input for one run of ``parallel_tools_graph``: the run key as the human message."""
    return {"messages": [HumanMessage(content=key)]}


def run_config(key: str) -> dict[str, Any]:
    """The config for one run: the key as the thread id (``gen_ai.conversation.id``)."""
    return {"configurable": {"thread_id": key}}


PER_RUN = {"tasks": 3, "chats": 2, "tools": 2}
"""What one run of ``parallel_tools_graph`` records: agent, tools, agent; two chats; two tools."""


def check_traces(spans: Iterable[ReadableSpan], keys: Iterable[str]) -> None:
    """Every run is one complete, well-nested trace that mentions only its own run key."""
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.context.trace_id].append(span)  # type: ignore[union-attr]
    expected = set(keys)
    assert len(by_trace) == len(expected)
    seen: set[str] = set()
    for members in by_trace.values():
        ids = {s.context.span_id for s in members}  # type: ignore[union-attr]
        roots = [s for s in members if s.parent is None]
        assert len(roots) == 1, [s.name for s in roots]
        root = roots[0]
        assert (root.attributes or {})[names.GEN_AI_OPERATION_NAME] in (
            names.OP_INVOKE_AGENT,
            names.OP_INVOKE_WORKFLOW,
        )
        for span in members:
            assert span.parent is None or span.parent.span_id in ids, span.name
            assert span.start_time >= root.start_time
            assert span.end_time <= root.end_time
        key = str((root.attributes or {})[names.GEN_AI_CONVERSATION_ID])
        assert key in expected
        assert key not in seen
        seen.add(key)
        tasks = [s for s in members if names.LANGGRAPH_NODE in (s.attributes or {})]
        chats = [s for s in members if s.name.startswith("chat ")]
        tools = [s for s in members if s.name.startswith("execute_tool ")]
        assert (len(tasks), len(chats), len(tools)) == (
            PER_RUN["tasks"],
            PER_RUN["chats"],
            PER_RUN["tools"],
        )
        call_ids = {(s.attributes or {})[names.GEN_AI_TOOL_CALL_ID] for s in tools}
        assert call_ids == {f"{key}-echo", f"{key}-double"}
        by_id = {s.context.span_id: s for s in members}  # type: ignore[union-attr]
        for span in tools + chats:
            parent = by_id[span.parent.span_id]  # type: ignore[union-attr]
            assert names.LANGGRAPH_NODE in (parent.attributes or {}), (span.name, parent.name)
        for span in tasks:
            assert span.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert seen == expected


def no_current_span() -> bool:
    """Whether the caller's context holds no span (otelstream leaked none into it)."""
    return not trace.get_current_span().get_span_context().is_valid


# ---- span processors that keep nothing ---------------------------------------------------------


class CountOnly(SpanProcessor):
    """Counts ended spans and keeps nothing, so memory measurements see only otelstream."""

    def __init__(self) -> None:
        self.ended = 0
        self.dropped_events = 0
        self.max_events = 0
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended += 1
            self.dropped_events += span.dropped_events
            self.max_events = max(self.max_events, len(span.events))


# ---- registries --------------------------------------------------------------------------------


def live_recorders() -> list[RunRecorder]:
    """Every ``RunRecorder`` still reachable after a full collection."""
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, RunRecorder)]


def watchdog_threads() -> list[threading.Thread]:
    """otelstream's watchdog threads alive now."""
    return [t for t in threading.enumerate() if t.name == "otelstream-watchdog" and t.is_alive()]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ---- hostile and healthy peers on loopback -----------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Acceptor:
    """A loopback listener that accepts and then either resets or holds every connection."""

    def __init__(self, *, reset: bool) -> None:
        self._reset = reset
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.received = threading.Event()
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted += 1
            if self._reset:
                # SO_LINGER 0: close() sends RST, a peer that refuses mid-handshake.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                self._held.append(conn)
                threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                self.received.set()
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self.listener.close()


def resetter() -> _Acceptor:
    """A loopback peer that accepts each connection and resets it at once."""
    return _Acceptor(reset=True)


def blackhole() -> _Acceptor:
    """A loopback peer that accepts each connection, reads everything and never answers."""
    return _Acceptor(reset=False)


class Receiver:
    """A real OTLP receiver on a fixed loopback port (gRPC or HTTP/protobuf) that can be stopped
    and started again on the same port, as a restarted collector is."""

    def __init__(self, protocol: str, port: int) -> None:
        self.protocol = protocol
        self.port = port
        self.trace_ids: set[str] = set()
        self.span_names: list[str] = []
        self.metric_requests = 0
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._lock:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.trace_ids.add(span.trace_id.hex())
                        self.span_names.append(span.name)

    def start(self) -> None:
        if self.protocol == "grpc":
            receiver = self

            class Traces(trace_service_pb2_grpc.TraceServiceServicer):
                def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                    receiver._spans(request)
                    return trace_service_pb2.ExportTraceServiceResponse()

            class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
                def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                    receiver.metric_requests += 1
                    return metrics_service_pb2.ExportMetricsServiceResponse()

            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
            bound = server.add_insecure_port(f"127.0.0.1:{self.port}")
            assert bound == self.port
            server.start()
            self._server = server
        else:
            receiver = self

            class Handler(BaseHTTPRequestHandler):
                def do_POST(self) -> None:  # noqa: N802
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    if self.path == "/v1/traces":
                        request = trace_service_pb2.ExportTraceServiceRequest()
                        request.ParseFromString(body)
                        receiver._spans(request)
                    else:
                        receiver.metric_requests += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", "0")
                    self.end_headers()

                def log_message(self, format: str, *args: Any) -> None:
                    pass

            server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self.protocol == "grpc":
            server.stop(grace=None).wait()
        else:
            server.shutdown()
            server.server_close()

    def has_trace(self, trace_id: int) -> bool:
        with self._lock:
            return format(trace_id, "032x") in self.trace_ids
