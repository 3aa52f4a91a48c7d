"""The live progress: plain lines with times and an estimate when the output is not a terminal,
bars without source links when it is."""

import io
from types import SimpleNamespace

from rich.console import Console

from bench.cells.progress import CellProgress, _clock
from bench.cells.results import CellResult, Status


def _plan():
    cfg = SimpleNamespace(updates=4)
    return SimpleNamespace(configs={"mle": cfg, "seqgan": cfg})


def test_to_a_file_each_cell_gets_a_start_and_an_end_line_with_what_remains():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with CellProgress(_plan(), 3, console) as progress:
        progress.reused("mle", 0, "abc")
        progress.start("seqgan", 0)
        for _ in range(4):
            progress.tick({})
        progress.ended(CellResult(Status.FINISHED))
        progress.finished("mle", 1, CellResult(Status.FAILED, "failed: boom"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and all(line.startswith("[0 s] ") for line in lines)
    assert lines[0].endswith(
        "mle seed 0: already finished (MLflow run abc), reused; --force re-runs it"
    )
    assert lines[1].endswith("start seqgan seed 0 (2/3)")
    assert "end seqgan seed 0: finished after 0 s; 2/3 cells done, about 0 s left" in lines[2]
    assert lines[3].endswith("end mle seed 1: failed: boom; 3/3 cells done")
    assert progress.unfinished == [("mle seed 1", "failed: boom")]
    progress.finished("mle", 2, CellResult(Status.FAILED, "failed: boom"))
    progress.finished("cot", 0, CellResult(Status.TIMEOUT, "timeout:\n 5 s"))
    assert (
        progress.unfinished_summary()
        == "mle seed 1, mle seed 2: failed: boom; cot seed 0: timeout: 5 s"
    )


def test_in_a_terminal_log_lines_carry_no_source_link():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, log_path=False)
    with CellProgress(_plan(), 1, console) as progress:
        progress.note("hello there")
    assert "hello there" in out.getvalue() and "progress.py" not in out.getvalue()
    assert CellProgress(_plan(), 1).console.__dict__["_log_render"].show_path is False


def test_clock_reads_like_a_person_would_write_it():
    assert [_clock(s) for s in (12, 185, 3725)] == ["12 s", "3 min 05 s", "1 h 02 min"]
