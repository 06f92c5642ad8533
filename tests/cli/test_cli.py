"""The ``otelstream`` command line, run as a person would run it."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pexpect
import pytest

from otelstream import __version__
from tests.cli.conftest import CLI, HERE, clean_env, run_cli

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
INPUT = json.dumps({"messages": [{"role": "user", "content": "hi"}]})


def spawn(*args: str, cwd: Path = HERE) -> pexpect.spawn:
    """Start the CLI in a pseudo-terminal 160 columns wide."""
    return pexpect.spawn(
        CLI[0],
        [*CLI[1:], *args],
        cwd=str(cwd),
        env=clean_env(TERM="xterm-256color"),
        encoding="utf-8",
        dimensions=(50, 160),
        timeout=90,
    )


# --- demo, in a terminal --------------------------------------------------------------------


def test_demo_in_terminal_shows_tree_ttft_stall_then_waterfall(tmp_path: Path) -> None:
    """The live demo shows the tree, TTFT and the stall while the tool hangs, then the waterfall."""
    trace_file = tmp_path / "tty-traces.jsonl"
    child = spawn("demo", "--trace-file", str(trace_file))
    child.expect("invoke_agent travel_agent")
    child.expect("chat demo-model")
    child.expect("TTFT")
    # The live stall warning ("still waiting") comes while check_availability hangs, before the
    # run ends and the waterfall replaces the live view.
    child.expect("STALLED execute_tool check_availability: running .* still waiting")
    before_stall = child.before
    assert "Waterfall" not in before_stall
    assert "Answer:" not in before_stall
    child.expect("Waterfall")
    child.expect("execute_tool book_table")
    child.expect("chunk rate")
    child.expect("Totals:")
    child.expect(re.escape(str(trace_file)))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert trace_file.exists()


def test_demo_in_terminal_uses_ansi_styles(tmp_path: Path) -> None:
    """On a terminal the view is drawn with ANSI styles (the live redraw and colours)."""
    child = spawn("demo", "--trace-file", str(tmp_path / "t.jsonl"))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert ANSI.search(child.before or "") is not None


# --- demo, without a terminal ---------------------------------------------------------------


def test_demo_without_terminal_prints_plain_lines(
    demo_trace: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """Through a pipe the demo prints one plain line per event and no ANSI escape at all."""
    _, result = demo_trace
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(re.search(r"start\s+invoke_agent travel_agent", line) for line in lines)
    assert any(re.search(r"end\s+execute_tool get_weather", line) for line in lines)
    assert any(line.count("custom write") and "progress" in line for line in lines)
    assert any("TTFT" in line and "first text of the run" in line for line in lines)
    assert any(
        re.search(r"error\s+execute_tool book_table.*ConnectionError", line) for line in lines
    )


def test_demo_plain_stall_line_comes_before_the_tool_ends(
    demo_trace: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """The plain stall line is printed before the hanging tool's end line, not after the run."""
    _, result = demo_trace
    lines = result.stdout.splitlines()
    stall = next(
        i for i, line in enumerate(lines) if "STALLED execute_tool check_availability" in line
    )
    tool_end = next(
        i
        for i, line in enumerate(lines)
        if re.search(r"end\s+execute_tool check_availability", line)
    )
    assert stall < tool_end


def test_demo_prints_waterfall_totals_and_trace_file(
    demo_trace: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """After the run, the demo prints the waterfall, the totals and where the trace file is."""
    path, result = demo_trace
    out = result.stdout
    assert "Waterfall" in out
    assert re.search(r"invoke_agent travel_agent .*█.*TTFT", out)
    assert "┃" in out  # the TTFT mark on the bars
    assert "◆" in out  # the stall marker
    assert re.search(r"Totals: .*TTFT .* 1 error .* 1 stall .* 4 custom writes", out)
    assert f"Trace file: {path}" in out
    assert path.exists()


# --- view -----------------------------------------------------------------------------------


def test_view_renders_the_demo_trace_file(
    demo_trace: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """``view`` draws the demo's file: tree, TTFT, chunk rate, custom writes, stall, error."""
    path, _ = demo_trace
    result = run_cli("view", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out
    for expected in (
        "invoke_agent travel_agent",
        "    chat demo-model",
        "execute_tool fetch_bookings",
        "4 custom writes",
        "chunk rate",
        "STALLED after",
        "✗ ConnectionError",
        "Totals:",
    ):
        assert expected in out


def test_view_in_terminal_shows_the_waterfall(
    demo_trace: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """``view`` in a terminal shows the same waterfall on screen."""
    path, _ = demo_trace
    child = spawn("view", str(path))
    child.expect("invoke_agent travel_agent")
    child.expect("chunk rate")
    child.expect("Totals:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# --- run ------------------------------------------------------------------------------------


def test_run_traces_a_user_graph_to_a_file(tmp_path: Path) -> None:
    """``run`` imports a graph, streams it with the input, shows it and writes the trace; a plain
    graph's invoke_workflow span is the run in the waterfall and the totals."""
    trace_file = tmp_path / "run.jsonl"
    result = run_cli("run", "sample_graph:graph", "--input", INPUT, "--trace-file", str(trace_file))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert re.search(r"start\s+invoke_workflow sample_graph", result.stdout)
    assert re.search(r"invoke_workflow sample_graph .*█.*TTFT .*, completed", result.stdout)
    assert re.search(r"Totals: .* · completed · TTFT ", result.stdout)
    assert "custom write {'step': 'thinking'}" in result.stdout
    assert "The sample graph answers in a few streamed words." in result.stdout
    assert "Totals:" in result.stdout
    assert trace_file.exists()


def test_run_accepts_a_factory_stream_mode_and_thread_id(tmp_path: Path) -> None:
    """``run`` calls a zero-argument factory and passes --stream-mode and --thread-id through."""
    trace_file = tmp_path / "run.jsonl"
    result = run_cli(
        "run",
        "sample_graph:build",
        "--input",
        INPUT,
        "--stream-mode",
        "values",
        "--thread-id",
        "t-42",
        "--trace-file",
        str(trace_file),
    )
    assert result.returncode == 0, result.stderr
    assert "gen_ai.conversation.id" in trace_file.read_text()
    assert "t-42" in trace_file.read_text()


def test_run_in_terminal_shows_live_view(tmp_path: Path) -> None:
    """``run`` in a terminal shows the live tree and then the waterfall."""
    child = spawn(
        "run", "sample_graph:graph", "--input", INPUT, "--trace-file", str(tmp_path / "r.jsonl")
    )
    child.expect("invoke_workflow sample_graph")
    child.expect("Waterfall")
    child.expect("Totals:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_run_of_a_failing_graph_exits_1_with_the_error(tmp_path: Path) -> None:
    """A graph that raises still gets its waterfall, then the error and exit code 1."""
    result = run_cli(
        "run",
        "sample_graph:build_failing",
        "--input",
        INPUT,
        "--trace-file",
        str(tmp_path / "f.jsonl"),
    )
    assert result.returncode == 1
    assert "Run failed: RuntimeError: the sample graph failed on purpose" in result.stdout
    assert "✗ RuntimeError" in result.stdout


def test_waterfall_shows_a_retried_task(tmp_path: Path) -> None:
    """A node LangGraph retried is one row that says how many attempts it took, and after what."""
    result = run_cli(
        "run",
        "sample_graph:build_retried",
        "--input",
        INPUT,
        "--trace-file",
        str(tmp_path / "r.jsonl"),
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"flaky .*↻ 2 attempts \(retried after _Flaky\)", result.stdout)
    assert "✗" not in result.stdout  # the last attempt succeeded: not an error


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no_such_module:graph", "--input", "{}"], "module 'no_such_module' not found"),
        (["run", "sample_graph:missing", "--input", "{}"], "has no attribute 'missing'"),
        (["run", "sample_graph:NOT_A_GRAPH", "--input", "{}"], "not a compiled graph"),
        (["run", "sample_graph", "--input", "{}"], "expected MODULE:ATTR"),
        (["run", "sample_graph:graph", "--input", "{not json"], "--input is not valid JSON"),
        (["view", "/no/such/file.jsonl"], "cannot read /no/such/file.jsonl"),
        (["view", str(HERE / "sample_graph.py")], "not an OTLP JSON trace line"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    """Each kind of bad input prints one clear line on stderr and exits with code 2."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert lines[0].startswith(f"otelstream {args[0]}: error:")


def test_view_of_an_empty_file_is_an_error(tmp_path: Path) -> None:
    """A trace file with no spans is reported as such, exit code 2."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_cli("view", str(empty))
    assert result.returncode == 2
    assert "no spans" in result.stderr


def test_view_of_json_that_is_not_otlp_is_an_error(tmp_path: Path) -> None:
    """A JSON line that is not a TracesData object is reported with its line number."""
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"hello": "world"}\n')
    result = run_cli("view", str(bogus))
    assert result.returncode == 2
    assert f"{bogus}:1:" in result.stderr


# --- help and version -----------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["view"]])
def test_help_on_every_command(command: list[str]) -> None:
    """``--help`` works on the program and on every command."""
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: otelstream")


def test_version() -> None:
    """``--version`` prints the package version."""
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"otelstream {__version__}"
