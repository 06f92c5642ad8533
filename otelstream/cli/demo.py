"""The built-in demo agent: a ``create_agent`` agent with a scripted model, no key, no network.

Its tools cover what a trace should make visible: a fast tool, a tool that reports progress with
``get_stream_writer``, a tool that hangs past the demo's stall threshold, and a tool that fails
once and succeeds when ``ToolRetryMiddleware`` retries it. The whole run takes about ten seconds.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import ToolRetryMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer

from otelstream.options import Options
from otelstream.testing import FakeStreamingChatModel, tool_call, tool_calls

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

__all__ = ["DEMO_INPUT", "HANG_SECONDS", "STALL_THRESHOLD", "build_demo_agent", "demo_options"]

STALL_THRESHOLD = 1.0
"""The demo's tool stall threshold, in seconds: low, so that the hanging tool shows a stall."""
HANG_SECONDS = 2.5
"""How long ``check_availability`` hangs: past the threshold, short enough for a demo."""

DEMO_INPUT: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": "Plan a day in Lisbon: weather, my bookings, a dinner table."}
    ]
}
"""What the demo asks the agent."""


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It's sunny and 24 °C in {city}."


@tool
def fetch_bookings(user: str) -> str:
    """Fetch a user's bookings, reporting progress as it goes."""
    writer = get_stream_writer()
    for done in (25, 50, 75, 100):
        time.sleep(0.15)
        writer({"tool": "fetch_bookings", "progress": f"{done}%"})
    return f"3 bookings for {user}: hotel, museum, tram tour."


@tool
def check_availability(restaurant: str) -> str:
    """Ask a restaurant's slow reservation system whether a table is free."""
    # Hangs past the stall threshold on purpose: the watchdog reports the stall while it runs.
    time.sleep(HANG_SECONDS)
    return f"{restaurant} has a table at 20:30."


class _FailsOnce:
    """A booking backend that refuses the first request (a transient error) and then accepts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0

    def book(self, restaurant: str) -> str:
        with self._lock:
            self._calls += 1
            first = self._calls == 1
        if first:
            msg = f"{restaurant}: reservation service unavailable (HTTP 503)"
            raise ConnectionError(msg)
        return f"Table booked at {restaurant} for 20:30, confirmation LX-2046."


def _model() -> FakeStreamingChatModel:
    answer = (
        "Here is your day in Lisbon. The weather is sunny and 24 °C, so the tram tour in the "
        "morning is a good start. You have three bookings: the hotel, the museum and the tram "
        "tour. Dinner is booked at Taberna do Largo for 20:30 (confirmation LX-2046); the "
        "first booking attempt failed, the retry went through. Enjoy your day!"
    )
    return FakeStreamingChatModel(
        model_name="demo-model",
        first_chunk_delay=0.35,
        chunk_delay=0.03,
        responses=[
            tool_calls(
                ("get_weather", {"city": "Lisbon"}, "call_weather"),
                ("fetch_bookings", {"user": "ana"}, "call_bookings"),
            ),
            tool_call(
                "check_availability", {"restaurant": "Taberna do Largo"}, call_id="call_table"
            ),
            tool_call("book_table", {"restaurant": "Taberna do Largo"}, call_id="call_book"),
            AIMessage(content=answer),
        ],
    )


def build_demo_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the demo agent: four tools, a retry on the flaky one, a scripted streaming model.

    Returns:
        A compiled ``create_agent`` graph named ``travel_agent``. Build a new one per run: the
        scripted model and the flaky backend keep state.
    """
    backend = _FailsOnce()

    @tool
    def book_table(restaurant: str) -> str:
        """Book a dinner table at a restaurant."""
        return backend.book(restaurant)

    retry = ToolRetryMiddleware(
        max_retries=2, tools=["book_table"], initial_delay=0.3, jitter=False
    )
    agent: CompiledStateGraph[Any, Any, Any, Any] = create_agent(
        _model(),
        tools=[get_weather, fetch_bookings, check_availability, book_table],
        middleware=[retry],
        name="travel_agent",
    )
    return agent


def demo_options(*, capture_content: bool = False) -> Options:
    """The demo's options: a one-second tool stall threshold, so the hanging tool stalls.

    Args:
        capture_content: Record prompts, chunk text, tool arguments and custom payloads.

    Returns:
        The options to instrument the demo agent with.
    """
    return Options(capture_content=capture_content, tool_stall_threshold=STALL_THRESHOLD)
