"""docs/bad-input.md: every row a case run here, printing the very line it shows; the file is
what tools/bad_input_table.py renders from the cases."""

import json
import shlex
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bench import rescore, sample
from bench.report.__main__ import main as report_main
from bench.run import main as run_main
from bench.store.generators import generator_record, log_generator
from bench.store.tracker import Tracker
from methods.generator import LSTMGenerator
from oracle.data import OracleSpec, build_oracle, load_task
from tests.bad_input_cases import CASES, ENTRIES, shows
from tests.conftest import ROOT
from tests.test_cli import _bad_oracle_files
from tools.bad_input_table import PROG, render
from tools.bad_input_table import main as table_main
from tools.store_archive import encode
from tools.store_archive import main as archive_main

MAINS = {
    "bench.run": run_main,
    "bench.report": report_main,
    "bench.rescore": rescore.main,
    "bench.sample": sample.main,
    "tools/store_archive.py": archive_main,
}
STORE = "sqlite:///mlflow.db"  # the fixture's store, in the working folder
REGENERATE = f"{PROG} docs/bad-input.md"


def _cell_run(request) -> dict[str, str]:
    """Experiment e with one finished cell run, CELL_RUN."""
    tracker = Tracker(STORE, "e")
    cell = tracker.start("mle-s0", {"kind": "method"})
    tracker.end(cell)
    return {"CELL_RUN": cell}


def _damaged_generator(request) -> dict[str, str]:
    """Experiment keep with one invocation, INVOCATION, of the smoke preset's task (at 64
    sequences a split): its one finished cell's generator.pt lacks the tensor out.bias."""
    _, oracle = build_oracle(OracleSpec(kind="random", seed=66))
    cache = request.getfixturevalue("tmp_path_factory").mktemp("data")
    digest = load_task(OracleSpec(kind="random", seed=66), 64, 64, cache).data_digest
    tracker = Tracker(STORE, "keep")
    tags = {"kind": "parent", "oracle": oracle, "oracle_kind": "random", "task_data": digest}
    parent = tracker.start("bench-x", tags)
    sizes = ("n_train", "n_test", "final_samples", "bleu_samples", "sweep_samples")
    params = {f"bench.{name}": 64 for name in sizes}
    tracker.log_params(parent, params | {"bench.eval_seed": 0, "bench.sweep_alphas": "1"})
    tags = {"kind": "method", "method": "mle", "seed": "0", "cell_status": "finished"}
    cell = tracker.start("mle-s0", tags, parent)
    record = generator_record(LSTMGenerator(50, 8, 8, 20), "mle", 0, oracle)
    record["state_dict"].pop("out.bias")
    log_generator(tracker, cell, record)
    tracker.end(cell)
    tracker.end(parent)
    return {"INVOCATION": parent}


def _archives(request) -> dict[str, str]:
    """Damaged archive files, a regular file afile, and experiment x."""
    record = {
        "format": 1,
        "run_id": "0" * 32,
        "run_name": "mle-s0",
        "status": "FINISHED",
        "start_time": 0,
        "end_time": 0,
        "tags": {"kind": "method", "cell_key": "k", "cell_status": "finished"},
        "params": {},
        "metrics": {"m": [[0, 1.0, 0]]},
        "datasets": [],
        "artifacts": {},
    }
    whole = encode(record)
    Path("cut.json.gz").write_bytes(whole[: len(whole) // 2])
    Path("list.json.gz").write_bytes(encode([record]))
    no_key = json.loads(json.dumps(record))
    del no_key["tags"]["cell_key"]
    Path("nokey.json.gz").write_bytes(encode(no_key))
    text = json.loads(json.dumps(record))
    text["metrics"]["m"][0][1] = "nine"
    Path("text.json.gz").write_bytes(encode(text))
    Path("afile").write_text("")
    Tracker(STORE, "x")
    return {}


def _write(name: str, content: bytes):
    def setup(request) -> dict[str, str]:
        Path(name).write_bytes(content)
        return {}

    return setup


SETUPS = {  # case.setup -> what prepares the working folder; returns placeholder -> value
    "": lambda request: {},
    "oracle files": lambda request: (
        _bad_oracle_files(Path("."), request.getfixturevalue("paper_oracle_path")) or {}
    ),
    "afile": _write("afile", b"x"),
    "junk.db": _write("junk.db", b"junk junk junk"),
    "cut.db": _write("cut.db", b"SQLite format 3\x00" + b"\x00" * 200),
    "cell run": _cell_run,
    "damaged generator": _damaged_generator,
    "archives": _archives,
}


def _exit_code(main, argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's refusals
        return e.code


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def _runs(db: Path, status: str = "%") -> int:
    """How many runs the store holds, of any status or of `status`."""
    with closing(sqlite3.connect(db)) as connection:
        query = "SELECT count(*) FROM runs WHERE status LIKE ?"
        return connection.execute(query, (status,)).fetchone()[0]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.entry} {shlex.join(c.args)}" for c in CASES])
def test_each_case_prints_the_line_its_row_shows(
    case, mlflow_uri, tmp_path, monkeypatch, capsys, request
):
    monkeypatch.chdir(tmp_path)  # holds the fixture's store, mlflow.db
    values = SETUPS[case.setup](request)
    before = _files(tmp_path)
    argv = shlex.split(ENTRIES[case.entry].base) + [values.get(a, a) for a in case.args]
    capsys.readouterr()
    code = _exit_code(MAINS[case.entry], argv)
    err = capsys.readouterr().err
    assert code == case.exit, err
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    line = err.removesuffix("\n")
    assert case.key in line
    assert shows(case.shown, line), (
        f"the row shows\n  {case.shown}\nthe command printed\n  {line}\n"
        f"edit tests/bad_input_cases.py, then run {REGENERATE}"
    )
    assert _runs(tmp_path / "mlflow.db", "RUNNING") == 0
    if case.entry == "tools/store_archive.py":
        assert _runs(tmp_path / "mlflow.db") == 0  # nothing imported
    if ENTRIES[case.entry].writes_nothing:
        after = _files(tmp_path)
        assert before <= after and after - before == set(case.leaves)


def test_the_cases_are_distinct_and_each_shows_its_key():
    assert len({(c.entry, c.args) for c in CASES}) == len(CASES)
    assert {c.entry for c in CASES} == set(ENTRIES) == set(MAINS)
    assert {c.setup for c in CASES} == set(SETUPS)
    for case in CASES:
        assert case.key and case.key in case.shown, case
        assert case.shown.startswith(ENTRIES[case.entry].prefix) or case.shown.startswith(
            f"python -m {case.entry}: error: "
        )


def test_the_doc_is_what_the_cases_render():
    doc = ROOT / "docs" / "bad-input.md"
    assert doc.read_text() == render(), f"docs/bad-input.md is stale: run {REGENERATE}"
    assert table_main(["--check", str(doc)]) == 0


def test_check_fails_on_a_stale_file_and_passes_once_written(tmp_path, capsys):
    doc = tmp_path / "bad-input.md"
    doc.write_text("old\n")
    assert table_main(["--check", str(doc)]) == 1 and doc.read_text() == "old\n"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"run {PROG} {doc}" in err
    assert table_main([str(doc)]) == 0 and doc.read_text() == render()
    assert table_main(["--check", str(doc)]) == 0


def test_a_file_it_cannot_write_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert table_main([str(tmp_path / "afile" / "bad-input.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{PROG}: error: {tmp_path / 'afile'}")
