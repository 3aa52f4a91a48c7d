"""The store, the cache and the reports on a real read-only or full filesystem.

Each case mounts a small tmpfs in a private mount namespace (`unshare`; as a user namespace's
root when not root), fills it or remounts it read-only, and runs the command there in a fresh
process: one line on stderr, no traceback, a non-zero exit, or the correct recovery; nothing
finished lost and no run left RUNNING.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bench.run import main as run_main
from tests.bad_input_cases import FAULTS, shows

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "fs"
NAMESPACE = ["unshare", "--mount", "--propagation", "private"] + (
    [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
)
FILL = 'dd if=/dev/zero of="$M/fill" bs=16k 2>/dev/null || true'  # until ENOSPC
READ_ONLY = 'mount -o remount,ro "$M"'


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory) -> None:
    point = tmp_path_factory.mktemp("probe")
    probe = subprocess.run(
        [*NAMESPACE, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {point}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs in a namespace: {probe.stderr.strip()}")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, _mlflow_template, can_mount) -> dict:
    """A store holding one finished smoke invocation of mle (seed 0), with its cache."""
    root = tmp_path_factory.mktemp("finished")
    shutil.copy(_mlflow_template, root / "mlflow.db")
    argv = _argv(f"sqlite:///{root / 'mlflow.db'}", root / "reports", root / "cache")
    assert run_main(argv) == 0
    return dict(root=root, argv=argv)


def _argv(uri: str, reports: Path, cache: Path, methods: str = "mle") -> list[str]:
    return [
        "--methods",
        methods,
        "--preset",
        "smoke",
        "--bench.sweep-alphas",
        "1",
        "--tracking-uri",
        uri,
        "--experiment",
        EXPERIMENT,
        "--reports-dir",
        str(reports),
        "--cache-dir",
        str(cache),
    ]


def _on_small_fs(
    mount: Path, size: str, setup: str, argv: list[str], keep: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `python argv` with a fresh tmpfs of `size` at `mount` ($M in `setup`, a shell
    command run first); with `keep`, the tmpfs's files are copied there after the command."""
    mount.mkdir(parents=True, exist_ok=True)
    after = f'cp -a "$M"/. "{keep}"/ 2>/dev/null; ' if keep else ""
    script = (
        f'M="{mount}"; mount -t tmpfs -o size={size} tmpfs "$M" || exit 99; {setup}; '
        f'"$@"; rc=$?; {after}rm -f "$M/fill"; exit $rc'
    )
    return subprocess.run(
        [*NAMESPACE, "sh", "-c", script, "sh", sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def _answers(proc: subprocess.CompletedProcess, fault: str, one_line: bool = True) -> str:
    """The command's last stderr line, checked against FAULTS[fault] (docs/bad-input.md's row):
    its exit code, no traceback, and with `one_line` nothing else on stderr."""
    row = FAULTS[fault]
    assert proc.returncode == row.exit, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 or not one_line, proc.stderr
    assert shows(row.shown, lines[-1]), lines[-1]
    return lines[-1]


def _copy_store(finished: dict) -> str:
    return f'cp "{finished["root"] / "mlflow.db"}" "$M"/'


def _statuses(db: Path) -> list[str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(EXPERIMENT)
    return [r.info.status for r in client.search_runs([exp.experiment_id])]


# ----- a read-only filesystem -----


def test_bench_run_refuses_a_read_only_store_in_one_line(finished, tmp_path):
    m = tmp_path / "ro"
    argv = _argv(f"sqlite:///{m / 'mlflow.db'}", tmp_path / "reports", finished["root"] / "cache")
    proc = _on_small_fs(
        m, "4m", f"{_copy_store(finished)}; {READ_ONLY}", ["-m", "bench.run"] + argv
    )
    assert _answers(proc, "run-read-only-store") == (
        f"bench.run: error: MLflow store 'sqlite:///{m / 'mlflow.db'}' is read-only "
        f"('{m / 'mlflow.db'}' is on a read-only filesystem); this command records runs in it: "
        "pass a writable --tracking-uri"
    )
    assert not (tmp_path / "reports").exists()


def test_a_new_store_in_a_read_only_folder_is_refused_in_one_line(finished, tmp_path):
    m = tmp_path / "ro"
    argv = _argv(f"sqlite:///{m / 'new.db'}", tmp_path / "reports", finished["root"] / "cache")
    proc = _on_small_fs(m, "1m", READ_ONLY, ["-m", "bench.run", *argv])
    assert _answers(proc, "run-read-only-folder") == (
        f"bench.run: error: MLflow store 'sqlite:///{m / 'new.db'}' is read-only ('{m}' is on a "
        "read-only filesystem); this command records runs in it: pass a writable --tracking-uri"
    )


def test_bench_report_reads_a_read_only_store_and_says_the_report_is_not_attached(
    finished, tmp_path
):
    m = tmp_path / "ro"
    argv = ["-m", "bench.report", "--experiment", EXPERIMENT]
    argv += ["--tracking-uri", f"sqlite:///{m / 'mlflow.db'}"]
    argv += ["--reports-dir", str(tmp_path / "reports")]
    proc = _on_small_fs(m, "4m", f"{_copy_store(finished)}; {READ_ONLY}", argv)
    line = _answers(proc, "report-read-only-store")
    assert line.endswith(
        f"the store is read-only ('{m / 'mlflow.db'}' is on a read-only filesystem)"
    )
    report = (tmp_path / "reports" / EXPERIMENT / "README.md").read_text()
    original = (finished["root"] / "reports" / EXPERIMENT / "README.md").read_text()
    assert report.splitlines()[5:] == original.splitlines()[5:]  # the same tables and verdicts


@pytest.mark.parametrize("command", ["rescore", "import"])
def test_commands_that_write_runs_refuse_a_read_only_store_in_one_line(finished, tmp_path, command):
    m = tmp_path / "ro"
    uri = f"sqlite:///{m / 'mlflow.db'}"
    argv = {
        "rescore": ["-m", "bench.rescore", "--experiment", EXPERIMENT, "--tracking-uri", uri],
        "import": [
            "tools/store_archive.py",
            "import",
            "--tracking-uri",
            uri,
            "--experiment",
            EXPERIMENT,
            str(tmp_path),
        ],
    }[command]
    proc = _on_small_fs(m, "4m", f"{_copy_store(finished)}; {READ_ONLY}", argv)
    assert _answers(proc, f"{command}-read-only-store").endswith(
        f"MLflow store {uri!r} is read-only ('{m / 'mlflow.db'}' is on a read-only filesystem); "
        "this command records runs in it: pass a writable --tracking-uri"
    )


# ----- a full filesystem -----


def test_bench_run_on_a_full_store_stops_in_one_line_and_loses_nothing(finished, tmp_path):
    m, kept = tmp_path / "full", tmp_path / "kept"
    kept.mkdir()
    argv = _argv(f"sqlite:///{m / 'mlflow.db'}", tmp_path / "reports", finished["root"] / "cache")
    proc = _on_small_fs(
        m, "4m", f"{_copy_store(finished)}; {FILL}", ["-m", "bench.run"] + argv, kept
    )
    assert _answers(proc, "run-full-store") == (
        f"bench.run: error: MLflow store 'sqlite:///{m / 'mlflow.db'}' refused a write "
        "((sqlite3.OperationalError) database or disk is full); the cells finished before are "
        "stored there; once it can be written again (space, permissions), the same command "
        "resumes the rest"
    )
    before = _statuses(finished["root"] / "mlflow.db")
    assert sorted(_statuses(kept / "mlflow.db")) == sorted(before)  # every run, as it was
    assert "RUNNING" not in before


def test_bench_report_on_a_full_store_writes_the_files_and_says_what_failed(finished, tmp_path):
    m = tmp_path / "full"
    argv = ["-m", "bench.report", "--experiment", EXPERIMENT]
    argv += ["--tracking-uri", f"sqlite:///{m / 'mlflow.db'}"]
    argv += ["--reports-dir", str(tmp_path / "reports")]
    proc = _on_small_fs(m, "4m", f"{_copy_store(finished)}; {FILL}", argv)
    out = tmp_path / "reports" / EXPERIMENT
    line = _answers(proc, "report-full-store")
    assert line.endswith(
        f": (sqlite3.OperationalError) database or disk is full; the report files are in "
        f"{str(out)!r}"
    )
    assert (out / "README.md").exists()


@pytest.mark.parametrize("folder", ["reports", "cache"])
def test_bench_run_refuses_a_full_reports_or_cache_folder_before_any_work(
    finished, tmp_path, folder
):
    m = tmp_path / "full"
    dirs = {"reports": tmp_path / "reports", "cache": tmp_path / "cache"} | {folder: m / folder}
    store = tmp_path / "mlflow.db"
    shutil.copy(finished["root"] / "mlflow.db", store)
    argv = _argv(f"sqlite:///{store}", dirs["reports"], dirs["cache"])
    proc = _on_small_fs(m, "1m", FILL, ["-m", "bench.run"] + argv)
    where = str(dirs[folder] / EXPERIMENT) if folder == "reports" else str(dirs[folder])
    assert _answers(proc, f"run-full-{folder}") == (
        f"bench.run: error: {folder} directory {where!r} is not writable (No space left on "
        f"device); pass --{folder}-dir"
    )
    assert sorted(_statuses(store)) == sorted(_statuses(finished["root"] / "mlflow.db"))


def test_bench_report_refuses_a_full_reports_folder_in_one_line(finished, tmp_path):
    m = tmp_path / "full"
    argv = ["-m", "bench.report", "--experiment", EXPERIMENT, "--reports-dir", str(m)]
    argv += ["--tracking-uri", f"sqlite:///{finished['root'] / 'mlflow.db'}"]
    proc = _on_small_fs(m, "1m", FILL, argv)
    assert _answers(proc, "report-full-reports") == (
        f"bench.report: error: cannot write the report to {str(m / EXPERIMENT)!r} (No space "
        "left on device); pass --reports-dir"
    )
    assert "RUNNING" not in _statuses(finished["root"] / "mlflow.db")


def test_a_cache_that_fills_mid_run_fails_the_cell_in_one_summary_line(
    finished, tmp_path, _mlflow_template
):
    """600 kB hold the smoke task's data (160 kB) but not a pre-training (1.3 MB): the cell
    fails, the exit code and the last line say so, no run stays RUNNING, no partial file is
    left in the cache, and the same command with room finishes it."""
    m, kept = tmp_path / "small", tmp_path / "kept"
    kept.mkdir()
    store = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_template, store)
    argv = _argv(f"sqlite:///{store}", tmp_path / "reports", m / "cache")
    proc = _on_small_fs(m, "600k", "true", ["-m", "bench.run"] + argv, kept)
    assert _answers(proc, "run-cache-fills", one_line=False) == FAULTS["run-cache-fills"].shown
    assert "RUNNING" not in _statuses(store)
    assert [p.name for p in (kept / "cache").glob("*.tmp")] == []
    assert [p.name for p in (kept / "cache").glob("data-*.pt")] != []  # what fitted is kept
    roomy = _argv(f"sqlite:///{store}", tmp_path / "reports", tmp_path / "cache")
    assert run_main(roomy) == 0


def test_a_store_that_fills_mid_run_fails_the_cell_and_keeps_what_finished(
    tmp_path, _mlflow_template, can_mount
):
    """The store's folder (its database and, beside it, its artifacts) with 1 MB to spare: the
    pre-training and the reference rows are recorded, the cell's 1.3 MB generator.pt is not,
    so the cell fails; exit 1, its last line says so, and no run stays RUNNING."""
    m, kept = tmp_path / "store", tmp_path / "kept"
    kept.mkdir()
    size = f"{_mlflow_template.stat().st_size // 1024 + 1024}k"
    argv = _argv(f"sqlite:///{m / 'mlflow.db'}", tmp_path / "reports", tmp_path / "cache")
    setup = f'cp "{_mlflow_template}" "$M/mlflow.db"'
    proc = _on_small_fs(m, size, setup, ["-m", "bench.run", *argv], kept)
    assert _answers(proc, "run-store-fills", one_line=False) == FAULTS["run-store-fills"].shown
    client = MlflowClient(tracking_uri=f"sqlite:///{kept / 'mlflow.db'}")
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_name: r.info.status for r in client.search_runs([exp.experiment_id])}
    assert runs.pop("mle-s0") == "FAILED"
    assert {k: v for k, v in runs.items() if k.startswith(("pretrain", "ref-"))} == {
        "pretrain-s0": "FINISHED",
        "ref-oracle": "FINISHED",
        "ref-unigram": "FINISHED",
        "ref-uniform": "FINISHED",
    }
    assert "RUNNING" not in runs.values()
