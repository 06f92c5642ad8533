"""``otelstream``: the command line. Run the demo, trace your own graph, or view a trace file.

>>> otelstream demo                                   # a traced agent run, no key, no network
>>> otelstream run app.graph:agent --input '{"messages": [...]}'
>>> otelstream view otelstream-traces.jsonl

``demo`` and ``run`` show the run live (a redrawn tree on a terminal, plain lines elsewhere),
then a waterfall of the trace; ``view`` draws the same waterfall from a saved OTLP JSON Lines
file. Bad input (a module that does not import, an attribute that is not a graph, invalid JSON,
an unreadable trace file) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from otelstream import __version__
from otelstream._instrument import instrument
from otelstream.cli.live import LiveSpanProcessor, LiveView
from otelstream.cli.traces import TraceFileError, group_traces, read_trace_file
from otelstream.cli.waterfall import plural, render_traces
from otelstream.export import configure
from otelstream.options import Options

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langgraph.pregel import Pregel

__all__ = ["UsageError", "main", "traced_run"]

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_LIVE_MODES = ("updates", "messages", "custom")
"""What the live view reads: ``messages`` for chunks, rate and TTFT, ``custom`` for writes."""
_PLAIN_WIDTH = 160
"""Width of plain output when the environment does not say (pipes have no width)."""


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def _console() -> tuple[Console, bool]:
    """The console, and whether it is an interactive terminal.

    Off a terminal, colour is switched off outright (even with ``FORCE_COLOR``), so logs and
    pipes never see an ANSI escape, and the width is generous, since a pipe has none.
    """
    probe = Console()
    if probe.is_terminal and not probe.is_dumb_terminal:
        return Console(highlight=False), True
    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else _PLAIN_WIDTH
    plain = Console(
        highlight=False, color_system=None, force_terminal=False, width=width, emoji=False
    )
    return plain, False


def _load_graph(target: str) -> Pregel[Any, Any, Any, Any]:
    """Import ``MODULE:ATTR`` and return the compiled graph it names (or builds).

    Raises:
        UsageError: The target is malformed, the module or attribute is missing, or it is
            neither a compiled graph nor a zero-argument callable returning one.
    """
    from langgraph.pregel import Pregel  # noqa: PLC0415 - keeps ``--help`` fast

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        msg = f"expected MODULE:ATTR (such as app.graph:agent), got {target!r}"
        raise UsageError(msg)
    # Like ``python -m``: modules in the working directory are importable.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        msg = f"module {module_name!r} not found ({exc})"
        raise UsageError(msg) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            msg = f"module {module_name!r} has no attribute {attr!r}"
            raise UsageError(msg) from exc
    if not isinstance(obj, Pregel) and callable(obj) and not isinstance(obj, type):
        try:
            obj = obj()
        except TypeError as exc:
            msg = (
                f"{target} is not a compiled graph, and calling it with no arguments failed: {exc}"
            )
            raise UsageError(msg) from exc
    if not isinstance(obj, Pregel):
        msg = (
            f"{target} is a {type(obj).__name__}, not a compiled graph: point at a compiled "
            "graph (StateGraph(...).compile(), create_agent(...)) or a function returning one"
        )
        raise UsageError(msg)
    return obj


def _parse_input(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"--input is not valid JSON: {exc}"
        raise UsageError(msg) from exc


def traced_run(
    console: Console,
    interactive: bool,
    *,
    graph: Pregel[Any, Any, Any, Any],
    graph_input: Any,
    title: str,
    options: Options | None,
    stream_modes: Sequence[str],
    config: dict[str, Any] | None,
    trace_file: str | None,
    service_name: str,
    view: LiveView | None = None,
) -> int:
    """Trace one run of ``graph`` with the live view, then print the answer and the waterfall.

    Args:
        console: Where to print.
        interactive: Whether ``console`` is a terminal (live tree) or not (plain lines).
        graph: The compiled graph.
        graph_input: Its input.
        title: What the live view's header says.
        options: otelstream options (``None``: from the environment).
        stream_modes: The stream modes to request; the live view reads ``messages`` and
            ``custom`` when they are among them.
        config: The run's config, if any.
        trace_file: An explicit JSON Lines trace file, else ``configure()``'s choice.
        service_name: ``service.name`` of the trace.
        view: A view the caller built and drives itself (``scripts/capture_demo.py`` does, to
            snapshot it); by default a new one, started and stopped here.

    Returns:
        The exit code: 0, 1 when the run raised, 130 when interrupted.
    """
    telemetry = configure(service_name=service_name, jsonl_path=trace_file)
    own_view = view is None
    if view is None:
        view = LiveView(console, interactive=interactive, title=title)
    telemetry.tracer_provider.add_span_processor(LiveSpanProcessor(view))
    # otelstream logs stalls through the stdlib logger; unconfigured, Python's last-resort
    # handler would write them across the live display. The view shows stalls itself.
    logging.getLogger("otelstream").addHandler(logging.NullHandler())
    traced = instrument(
        graph,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        options=options,
    )
    failure: BaseException | None = None
    if own_view:
        view.start()
    try:
        for mode, chunk in traced.stream(graph_input, config, stream_mode=list(stream_modes)):
            view.on_stream(mode, chunk)
    except KeyboardInterrupt as exc:
        failure = exc
    except Exception as exc:
        failure = exc
    finally:
        view.stop()
        telemetry.shutdown(timeout=5.0)

    if view.answer:
        console.print(Text("Answer:", style="bold"))
        console.print(Text(" ".join(view.answer.split())), soft_wrap=not interactive)
        console.print()
    traces = group_traces(view.finished)
    if traces:
        console.print(render_traces(traces, width=console.width, trace_file=telemetry.trace_file))
    if telemetry.trace_file is None:
        console.print(Text("Traces exported as the OTEL_* environment configures.", style="dim"))
    if isinstance(failure, KeyboardInterrupt):
        console.print(Text("Interrupted.", style="bold red"))
        return EXIT_INTERRUPTED
    if failure is not None:
        console.print(Text(f"Run failed: {type(failure).__name__}: {failure}", style="bold red"))
        return EXIT_RUN_FAILED
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, console: Console, interactive: bool) -> int:
    try:
        from otelstream.cli.demo import (  # noqa: PLC0415 - langchain only when needed
            DEMO_INPUT,
            build_demo_agent,
            demo_options,
        )
    except ImportError as exc:
        msg = f"the demo needs langchain (pip install 'langchain>=1.0'): {exc}"
        raise UsageError(msg) from exc

    return traced_run(
        console,
        interactive,
        graph=build_demo_agent(),
        graph_input=DEMO_INPUT,
        title="otelstream demo: travel_agent",
        options=demo_options(capture_content=args.capture_content),
        stream_modes=_LIVE_MODES,
        config=None,
        trace_file=args.trace_file,
        service_name="otelstream-demo",
    )


def _cmd_run(args: argparse.Namespace, console: Console, interactive: bool) -> int:
    graph_input = _parse_input(args.input)
    graph = _load_graph(args.target)
    config: dict[str, Any] | None = None
    if args.thread_id:
        config = {"configurable": {"thread_id": args.thread_id}}
    options = Options(capture_content=True) if args.capture_content else None
    return traced_run(
        console,
        interactive,
        graph=graph,
        graph_input=graph_input,
        title=f"otelstream run: {args.target}",
        options=options,
        stream_modes=args.stream_mode or _LIVE_MODES,
        config=config,
        trace_file=args.trace_file,
        service_name=os.environ.get("OTEL_SERVICE_NAME") or args.target.partition(":")[0],
    )


def _cmd_view(args: argparse.Namespace, console: Console, interactive: bool) -> int:
    path = Path(args.file)
    try:
        traces = read_trace_file(path)
    except TraceFileError as exc:
        raise UsageError(str(exc)) from exc
    if args.last:
        traces = traces[-args.last :]
    console.print(
        render_traces(traces, width=console.width, title=f"{path} ({plural(len(traces), 'trace')})")
    )
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelstream",
        description="Trace LangGraph streams with OpenTelemetry: run the demo, trace a graph, "
        "or view a trace file.",
    )
    parser.add_argument("--version", action="version", version=f"otelstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="run a built-in traced agent (no API key, no network), live",
        description="Run a built-in create_agent agent with a scripted streaming model and four "
        "tools (fast, progress writes, one that hangs past the stall threshold, one that fails "
        "once and is retried); show it live, then as a waterfall.",
    )
    demo.add_argument(
        "--trace-file",
        metavar="PATH",
        help="OTLP JSON Lines trace file (default: $OTELSTREAM_TRACE_FILE or "
        "./otelstream-traces.jsonl)",
    )
    demo.add_argument(
        "--capture-content", action="store_true", help="record prompts, chunk text and payloads"
    )
    demo.set_defaults(handler=_cmd_demo)

    run = commands.add_parser(
        "run",
        help="trace one run of your graph, live",
        description="Import MODULE:ATTR (a compiled graph, or a zero-argument callable "
        "returning one), stream it with --input, trace it and show it live. Traces go where "
        "otelstream.configure() sends them: OTEL_* environment, else a JSON Lines file.",
    )
    run.add_argument("target", metavar="MODULE:ATTR", help="the graph, such as app.graph:agent")
    run.add_argument("--input", required=True, metavar="JSON", help="the graph input, as JSON")
    run.add_argument(
        "--stream-mode",
        action="append",
        choices=["values", "updates", "messages", "custom", "debug", "tasks", "checkpoints"],
        help="stream mode to request (repeatable; default: updates, messages, custom)",
    )
    run.add_argument("--thread-id", metavar="ID", help="configurable.thread_id for the run")
    run.add_argument("--trace-file", metavar="PATH", help="also write this JSON Lines trace file")
    run.add_argument(
        "--capture-content", action="store_true", help="record prompts, chunk text and payloads"
    )
    run.set_defaults(handler=_cmd_run)

    view = commands.add_parser(
        "view",
        help="show a saved OTLP JSON Lines trace file as a waterfall",
        description="Render an OTLP JSON Lines trace file (as otelstream.configure() writes it) "
        "as a waterfall: span tree, durations, TTFT, chunk rate, custom writes, stalls, errors.",
    )
    view.add_argument("file", metavar="FILE", help="the trace file")
    view.add_argument("--last", type=int, metavar="N", help="show only the last N traces")
    view.set_defaults(handler=_cmd_view)

    # Listed here for --help; `main` hands its arguments to the sidecar's own parser.
    commands.add_parser(
        "sidecar",
        add_help=False,
        help="follow every run on a LangGraph server and trace each one "
        "(otelstream sidecar --help)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``otelstream`` command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 on success, 1 when the traced run failed, 2 for bad input, 130 when
        interrupted.
    """
    # Box-drawing and block characters must not crash a console with a narrow encoding.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["sidecar"]:
        from otelstream.remote.sidecar import main as sidecar_main  # noqa: PLC0415 - optional

        return sidecar_main(arguments[1:])
    args = _parser().parse_args(arguments)
    console, interactive = _console()
    try:
        code: int = args.handler(args, console, interactive)
    except UsageError as exc:
        print(f"otelstream {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
