"""Bad input, tried as a new user would: one line naming the value and what is valid, exit 2."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from bench.cli import build_parser, parse_seeds
from bench.help import SOURCE_TAGS
from bench.run import main
from methods import METHODS
from tests.bad_input_cases import ORACLE_FILES, RUN_OPTIONS
from tests.test_oracle import _Payload


def _bad_oracle_files(tmp, paper_oracle):
    """The files of ORACLE_FILES, in `tmp` (missing.pkl stays missing)."""
    (tmp / "text.pkl").write_text("hello")
    (tmp / "trunc.pkl").write_bytes(paper_oracle.read_bytes()[:5000])
    (tmp / "shapes.pkl").write_bytes(pickle.dumps([np.zeros((4, 4), np.float32)] * 15))
    (tmp / "evil.pkl").write_bytes(pickle.dumps([_Payload()]))


# (argv, the message's key part): tests/bad_input_cases.py, which docs/bad-input.md shows
CASES = [(list(c.args), c.key) for c in RUN_OPTIONS]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_options_exit_2_with_one_line(argv, message, tmp_path, mlflow_uri, capsys):
    base = ["--preset", "smoke", "--cache-dir", str(tmp_path), "--reports-dir", str(tmp_path)]
    if "--tracking-uri" not in argv:
        base += ["--tracking-uri", mlflow_uri]
    with (
        pytest.raises(SystemExit)
        if argv[0] in ("--preset", "--device", "--mle.nope") or argv[1] == "two"
        else _no()
    ):
        rc = main(base + argv)
        assert rc == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("case", ORACLE_FILES, ids=[c.args[-1] for c in ORACLE_FILES])
def test_bad_oracle_files_exit_2(case, tmp_path, capsys, paper_oracle_path):
    _bad_oracle_files(tmp_path, paper_oracle_path)
    path, message = tmp_path / case.args[-1], case.key
    assert case.args[:-1] == ("--oracle", "seqgan-paper", "--oracle-path")
    rc = main(
        [
            "--preset",
            "smoke",
            *case.args[:-1],
            str(path),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'fresh.db'}",
            "--cache-dir",
            str(tmp_path),
            "--reports-dir",
            str(tmp_path / "reports"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and str(path) in err and err.count("\n") == 1
    # refused before anything was written: no store, no data cache, no report folder
    assert not (tmp_path / "fresh.db").exists() and not list(tmp_path.glob("data-*"))
    assert not (tmp_path / "reports").exists()


def test_unwritable_reports_dir_is_refused_before_any_work(tmp_path, mlflow_uri, capsys):
    # a path below a regular file cannot be created, whatever the user's permissions (root too)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    argv = [
        "--preset",
        "smoke",
        "--reports-dir",
        str(blocker / "sub"),
        "--tracking-uri",
        mlflow_uri,
        "--cache-dir",
        str(tmp_path),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and "not-a-dir" in err and err.count("\n") == 1
    assert not list(tmp_path.glob("data-*"))  # refused before the task data was sampled


def test_the_real_cli_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--methods", "gan"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("bench.run: error: unknown method 'gan'")
    assert "Traceback" not in proc.stderr


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *args], capture_output=True, text=True, timeout=120
    )


def test_help_is_a_page_with_the_general_options_the_methods_and_the_presets():
    proc = _run("--help")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) <= 80
    for flag in ("--methods", "--seeds", "--preset", "--device", "--oracle", "--tracking-uri"):
        assert flag in proc.stdout
    assert "--experiment" in proc.stdout and "--plan" in proc.stdout
    assert "--help-options NAME" in proc.stdout
    for name, spec in METHODS.items():  # one line each: name and summary
        assert any(line.split()[:1] == [name] and spec.summary in line for line in lines), name
    for tag in SOURCE_TAGS:
        assert any(line.strip().startswith(tag) for line in lines), tag  # explained
    assert "--mle.lr" not in proc.stdout  # per-method options: --help-options
    undocumented = [a.dest for a in build_parser()._actions if not (a.help or "").strip()]
    assert undocumented == []  # every option, every method's every field, has help text


def test_help_options_shows_a_methods_fields_with_the_presets_values_and_the_papers():
    proc = _run("--help-options", "seqgan", "--preset", "quick")
    assert proc.returncode == 0
    assert "--seqgan.updates  [quick: 40; paper: 200]" in proc.stdout
    assert "--seqgan.d-steps  [quick: 1; paper: 5]" in proc.stdout
    assert "(default from: [HEAD] TOTAL_BATCH)" in proc.stdout
    assert "(default 200" not in proc.stdout  # the paper's default is shown as such, not alone
    mle = _run("--help-options", "mle", "--preset", "smoke").stdout
    assert "--mle.updates  [smoke: 10; paper: 200]" in mle and "Adam learning rate" in mle
    bench = _run("--help-options", "bench").stdout
    assert "--bench.n-train  [quick: " in bench
    pretrain = _run("--help-options", "pretrain", "--preset", "paper").stdout
    assert "--pretrain.epochs  [paper: 120]" in pretrain


def test_help_options_of_an_unknown_name_is_one_line():
    proc = _run("--help-options", "gan")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("bench.run: error: --help-options 'gan': choose a method (")


@pytest.mark.parametrize(
    "tokens, seeds",
    [(["3"], [0, 1, 2]), (["4", "7"], [4, 7]), (["5,"], [5]), (["1,2,3"], [1, 2, 3])],
)
def test_seeds_are_a_count_or_a_list(tokens, seeds):
    assert parse_seeds(tokens) == seeds


class _no:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_pretraining_has_its_own_options_and_only_they_move_every_cell(tmp_path):
    """--mle.* changes only the mle cell; --pretrain.* changes every cell's starting point."""
    from types import SimpleNamespace

    from bench.cells.keys import cell_key
    from bench.cli import make_plan

    task = SimpleNamespace(identity="task")
    base = ["--methods", "mle,seqgan", "--preset", "smoke", "--cache-dir", str(tmp_path)]

    def keys(*extra):
        plan = make_plan([*base, *extra])
        return {m: cell_key(plan, m, 0, task) for m in ("mle", "seqgan")}

    default = keys()
    mle_lr = keys("--mle.lr", "1e-3")
    pretrain_lr = keys("--pretrain.lr", "1e-3")
    assert mle_lr["seqgan"] == default["seqgan"] and mle_lr["mle"] != default["mle"]
    assert all(pretrain_lr[m] != default[m] for m in default)
    plan = make_plan([*base, "--pretrain.epochs", "7"])
    assert plan.pretrain.epochs == 7 and plan.pretrain.eval_every == 1  # smoke's preset
    assert not hasattr(plan.configs["mle"], "pretrain_epochs")


@pytest.mark.parametrize(
    "argv",
    [["--tracking-uri", "ftp://host/x"], ["--cache-dir", "/proc/nope"]],
    ids=["bad store", "bad cache dir"],
)
def test_a_refused_run_leaves_no_folder_behind(argv, tmp_path, mlflow_uri):
    base = ["--preset", "smoke", "--tracking-uri", mlflow_uri, "--cache-dir", str(tmp_path / "c")]
    assert main([*base, "--reports-dir", str(tmp_path / "r" / "deep"), *argv]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # the fixture's store


def test_report_refuses_an_experiment_name_that_leaves_the_reports_dir(tmp_path, capsys):
    from bench.report.__main__ import main as report_main

    uri = f"sqlite:///{tmp_path / 'none.db'}"
    argv = ["--experiment", "..", "--tracking-uri", uri, "--reports-dir", str(tmp_path / "r")]
    assert report_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench.report: error: --experiment '..' is not a valid experiment name")
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"junk junk junk", "file is not a database"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "cannot open MLflow store"),
    ],
    ids=["junk", "truncated"],
)
def test_a_store_file_that_is_not_a_store_is_one_line(tmp_path, capsys, content, message):
    db = tmp_path / "bad.db"
    db.write_bytes(content)
    argv = ["--preset", "smoke", "--tracking-uri", f"sqlite:///{db}"]
    argv += ["--cache-dir", str(tmp_path / "c"), "--reports-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_report_of_a_run_id_that_is_not_an_invocation_is_one_line(tmp_path, capsys):
    from bench.report.__main__ import main as report_main
    from bench.store.tracker import Tracker

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    cell = Tracker(uri, "e").start("mle-s0", {"kind": "method"})
    base = ["--experiment", "e", "--tracking-uri", uri, "--reports-dir", str(tmp_path / "r")]
    assert report_main([*base, "--run-id", "0" * 32]) == 2
    assert f"no run '{'0' * 32}' in" in capsys.readouterr().err
    assert report_main([*base, "--run-id", cell]) == 2
    err = capsys.readouterr().err
    assert "is not a bench.run invocation of this experiment" in err and err.count("\n") == 1
