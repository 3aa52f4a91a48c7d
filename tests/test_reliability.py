"""Runs that survive: kill and resume, divergence handling, bit-for-bit determinism on CPU."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pandas as pd
import pytest
from mlflow import MlflowClient

from bench.cells.results import CellResult, Status, worker_died, worker_error, worker_timed_out
from bench.run import main


def _argv(root, uri, *extra):
    return [
        "--preset",
        "smoke",
        "--tracking-uri",
        uri,
        "--experiment",
        "rel",
        "--reports-dir",
        str(root / "reports"),
        "--cache-dir",
        str(root / "cache"),
        *extra,
    ]


def _runs(uri, experiment="rel", kind="method"):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], f"tags.kind = '{kind}'")


def _finished(uri):
    try:
        return [r for r in _runs(uri) if r.data.tags.get("cell_status") == "finished"]
    except Exception:  # the experiment may not exist yet
        return []


def _kill_when(argv, condition, poll: float) -> int:
    """Run bench.run in a subprocess; SIGKILL its process group once `condition()` holds (or
    it exits, or 600 s pass); return its exit code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.run", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while not condition() and time.time() < deadline and proc.poll() is None:
        time.sleep(poll)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


@pytest.mark.slow
def test_killed_run_resumes_without_retraining_finished_cells(tmp_path, mlflow_uri):
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--seeds", "2")

    def second_cell_started():  # after seed 1's pre-training, its own run: kill mid-way
        try:
            return any(r.data.tags["seed"] == "1" for r in _runs(mlflow_uri))
        except Exception:  # the experiment may not exist yet
            return False

    _kill_when(argv, second_cell_started, poll=0.2)
    first = _finished(mlflow_uri)
    assert len(first) == 1, "expected exactly one finished cell before the kill"
    assert main(argv) == 0
    runs = _runs(mlflow_uri)
    status = sorted((r.data.tags["seed"], r.data.tags["cell_status"], r.info.status) for r in runs)
    assert status == [
        ("0", "finished", "FINISHED"),
        ("1", "finished", "FINISHED"),
        ("1", "killed", "KILLED"),
    ]
    assert first[0].info.run_id in {r.info.run_id for r in _finished(mlflow_uri)}  # not retrained
    parents = sorted(r.info.status for r in _runs(mlflow_uri, kind="parent"))
    assert parents == ["FINISHED", "KILLED"]  # the killed invocation's parent is marked too
    table = pd.read_csv(tmp_path / "reports" / "rel" / "results.csv")
    cells = table[(table.kind == "method") & (table.metric == "final/nll_oracle")]
    assert sorted(cells.seed) == [0, 1]  # every cell exactly once
    refs = _runs(mlflow_uri, kind="reference")
    assert sorted(r.data.tags["method"] for r in refs) == ["oracle", "uniform", "unigram"]
    rows = table[(table.kind == "reference") & (table.metric == "final/nll_oracle")]
    assert sorted(rows.method) == ["oracle", "uniform", "unigram"]  # computed once, reused


def _curves(uri, run_id):
    """Every non-perf metric's history of a run: {key: [(step, value), ...]} in step order."""
    client = MlflowClient(tracking_uri=uri)
    keys = [k for k in client.get_run(run_id).data.metrics if not k.startswith("perf/")]
    return {
        k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys
    }


@pytest.mark.slow
def test_killed_cell_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(
    tmp_path, mlflow_uri
):
    """SIGKILL a SeqGAN cell after its first checkpoint; the rerun continues from it (not from
    the pre-training), and its whole curve and final metrics equal an uninterrupted run's."""
    cell = ["--methods", "seqgan", "--seqgan.updates", "20", "--bench.checkpoint-every", "4"]
    assert main(_argv(tmp_path, mlflow_uri, *cell, "--experiment", "whole")) == 0
    checkpoints = tmp_path / "cache" / "checkpoints"
    assert not list(checkpoints.glob("*.pt")), "a finished cell leaves no checkpoint"

    argv = _argv(tmp_path, mlflow_uri, *cell)
    returncode = _kill_when(argv, lambda: list(checkpoints.glob("*.pt")), poll=0.02)
    assert returncode == -signal.SIGKILL, "the cell finished before it could be killed"
    assert main(argv) == 0

    (killed,) = [r for r in _runs(mlflow_uri) if r.info.status == "KILLED"]
    (resumed,) = [r for r in _runs(mlflow_uri) if r.info.status == "FINISHED"]
    (whole,) = _runs(mlflow_uri, "whole")
    at = int(resumed.data.tags["resumed_at_step"])  # the method's own steps, from 0
    assert 4 <= at < 20  # mid-way, not from the start
    assert killed.data.tags["cell_status"] == "killed"
    assert _curves(mlflow_uri, resumed.info.run_id) == _curves(mlflow_uri, whole.info.run_id)
    assert not list(checkpoints.glob("*.pt"))


@pytest.mark.slow
def test_nan_loss_marks_the_cell_diverged_and_the_suite_goes_on(tmp_path, mlflow_uri, capsys):
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--seeds", "2", "--mle.lr", "1e30")
    assert main(argv) == 0
    runs = _runs(mlflow_uri)
    assert len(runs) == 2  # the second seed ran after the first diverged
    for run in runs:
        tags = run.data.tags
        assert tags["cell_status"] == "diverged" and run.info.status == "FAILED"
        assert int(tags["diverged_step"]) >= 1 and tags["diverged_metric"].startswith("train/")
        client = MlflowClient(tracking_uri=mlflow_uri)
        curve = client.get_metric_history(run.info.run_id, "learning_curve/nll_oracle")
        assert curve  # the partial curve is kept
    table = pd.read_csv(tmp_path / "reports" / "rel" / "table.csv", index_col="method", dtype=str)
    assert "diverged" in table.loc["mle", "seeds"] and table.loc["mle", "NLL-oracle ↓"] == "—"


def test_loss_bound_marks_the_cell_diverged(tmp_path, mlflow_uri):
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.max-abs-loss", "1e-9")
    assert main(argv) == 0
    (run,) = _runs(mlflow_uri)
    assert run.data.tags["cell_status"] == "diverged" and run.data.tags["diverged_step"] == "1"


@pytest.mark.slow
def test_same_command_gives_bit_identical_metrics(tmp_path, _mlflow_template):
    """Two fresh invocations (separate stores and caches) of every registered method."""
    import shutil

    results = []
    for i in range(2):
        root = tmp_path / f"r{i}"
        root.mkdir()
        shutil.copy(_mlflow_template, root / "mlflow.db")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        assert main(_argv(root, uri, "--methods", "all", "--bench.sweep-alphas", "1")) == 0
        tidy = pd.read_csv(root / "reports" / "rel" / "results.csv")
        results.append(tidy[~tidy.metric.str.startswith("perf/")].reset_index(drop=True))
    pd.testing.assert_frame_equal(results[0], results[1], check_exact=True)


@pytest.mark.slow
def test_jobs_run_cells_in_worker_processes_and_give_the_local_results(tmp_path, _mlflow_template):
    """--jobs 2: pre-training once per seed, then cells in 2 spawned workers; the same results
    bit for bit as one process with the workers' thread count (with another thread count, float
    summation order differs in the last bits, which can flip a sampled token)."""
    import shutil

    import torch

    from bench.cells.pool import usable_cores

    results = {}
    threads = torch.get_num_threads()
    for jobs in ("1", "2"):
        # one process with the thread count each of the 2 workers gets
        torch.set_num_threads(max(1, usable_cores() // 2) if jobs == "1" else threads)
        root = tmp_path / f"jobs{jobs}"
        root.mkdir()
        shutil.copy(_mlflow_template, root / "mlflow.db")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        argv = _argv(root, uri, "--methods", "mle,gumbel", "--seeds", "2", "--jobs", jobs)
        assert main([*argv, "--bench.sweep-alphas", "1"]) == 0
        runs = _runs(uri)
        assert sorted((r.data.tags["method"], r.data.tags["seed"]) for r in runs) == [
            ("gumbel", "0"),
            ("gumbel", "1"),
            ("mle", "0"),
            ("mle", "1"),
        ]
        assert all(r.data.tags["cell_status"] == "finished" for r in runs)
        in_here = {r.data.tags["pid"] == str(os.getpid()) for r in runs}
        assert in_here == {jobs == "1"}  # --jobs 2: every cell ran in a worker process
        assert len(list((root / "cache").glob("pretrain-*.pt"))) == 2  # one per seed
        tidy = pd.read_csv(root / "reports" / "rel" / "results.csv")
        tidy = tidy[~tidy.metric.str.startswith("perf/")]
        results[jobs] = tidy.sort_values(["method", "seed", "metric"]).reset_index(drop=True)
    torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(results["1"], results["2"], check_exact=True)


def _cell_key_of(argv, method, seed):
    from bench.cells.keys import cell_key
    from bench.cli import make_plan
    from oracle.data import load_task

    plan = make_plan(argv)
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    return plan, cell_key(plan, method, seed, task)


def test_a_checkpoint_that_does_not_fit_is_dropped_and_the_cell_starts_over(
    tmp_path, mlflow_uri, capsys
):
    import torch

    from bench.cells.checkpoint import checkpoint_path, save_checkpoint

    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.sweep-alphas", "1")
    plan, key = _cell_key_of(argv, "mle", 0)
    stale = {
        "trainer": {"generator": {}, "some_old_part": {}},
        "rng": torch.Generator().get_state(),
        "loop": {"updates": 4, "train_s": 1.0, "perf_rows": []},
        "curve": [],
        "setup_s": 0.0,
    }
    path = checkpoint_path(plan.cache_dir, key)
    save_checkpoint(path, stale)
    assert main(argv) == 0
    (run,) = _runs(mlflow_uri)
    assert run.data.tags["cell_status"] == "finished" and "resumed_at_step" not in run.data.tags
    assert "does not fit" in capsys.readouterr().err
    assert not path.exists()


def test_a_cell_another_process_is_running_is_skipped_not_duplicated(tmp_path, mlflow_uri, capsys):
    from bench.cells.checkpoint import cell_lock

    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.sweep-alphas", "1")
    plan, key = _cell_key_of(argv, "mle", 0)
    with cell_lock(plan.cache_dir, key) as held:  # as a live process running that cell would
        assert held
        assert main(argv) == 1  # the report is written; the exit code says a cell has no result
        assert "1 of 1 cells have no result: mle seed 0: busy" in capsys.readouterr().err
        assert _runs(mlflow_uri) == []  # no run started, none marked killed
        table = pd.read_csv(tmp_path / "reports" / "rel" / "table.csv", index_col="method")
        assert table.loc["mle", "seeds"] == "0 (seed 0: running elsewhere)"  # not silently absent
    assert main(argv) == 0  # released: now it runs
    (run,) = _runs(mlflow_uri)
    assert run.data.tags["cell_status"] == "finished"


def test_a_cell_finished_elsewhere_after_planning_is_reused_not_run_again(tmp_path, mlflow_uri):
    # invocation B planned the cell while A still ran it; A finished before B took the lock
    from bench.cells.keys import Cell
    from bench.cells.lifecycle import run_cell
    from bench.cells.plan import Invocation
    from bench.cells.progress import QuietProgress
    from bench.cells.results import Status
    from bench.store.tracker import Tracker
    from oracle.data import load_task

    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.sweep-alphas", "1")
    assert main(argv) == 0  # A
    (first,) = _runs(mlflow_uri)
    plan, key = _cell_key_of(argv, "mle", 0)
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    tracker = Tracker(mlflow_uri, "rel")
    parent = tracker.start("b", {"kind": "parent"})
    inv = Invocation(plan, task, tracker, parent, {})
    result = run_cell(inv, Cell("mle", 0, key), QuietProgress())
    assert result.status is Status.REUSED and isinstance(result, CellResult)
    assert [r.info.run_id for r in _runs(mlflow_uri)] == [first.info.run_id]
    assert [r.info.run_id for r in tracker.cells(parent)] == [first.info.run_id]


def test_a_cell_locked_after_planning_is_skipped_without_marking_its_run_killed(
    tmp_path, mlflow_uri, monkeypatch
):
    # the lock is taken by another invocation between this one's planning and its start
    import bench.cells.choose
    from bench.cells.checkpoint import cell_lock
    from bench.store.tracker import Tracker

    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.sweep-alphas", "1")
    plan, key = _cell_key_of(argv, "mle", 0)
    live = Tracker(mlflow_uri, "rel").start("live", {"kind": "method", "cell_key": key})
    monkeypatch.setattr(
        bench.cells.choose, "cell_busy", lambda cache_dir, key: False
    )  # planned as free
    with cell_lock(plan.cache_dir, key) as held:
        assert held
        assert main(argv) == 1  # skipped as busy: no result
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(live)
    assert run.info.status == "RUNNING" and "cell_status" not in run.data.tags  # left alone


class _DeadWorkers:
    """A pool whose every cell job comes back as from a worker that died (or was killed for
    its time limit: `result`)."""

    def __init__(self, result) -> None:
        self.jobs, self.result = [], result

    def submit(self, job):
        self.jobs.append(job)
        return len(self.jobs) - 1

    def wait_one(self, handles):
        from bench.cells.executors import PretrainJob
        from bench.cells.results import Status

        pretrain = isinstance(self.jobs[handles[0]], PretrainJob)
        return handles[0], CellResult(Status.FINISHED) if pretrain else self.result


@pytest.mark.parametrize(
    "result, status",
    [
        (worker_died(9), "killed"),
        (worker_timed_out(30), "timeout"),
        (worker_error(RuntimeError("lost")), "killed"),
    ],
)
def test_a_cell_whose_worker_died_is_recorded_killed(tmp_path, mlflow_uri, result, status):
    from bench.cells.executors import schedule
    from bench.cells.keys import Cell
    from bench.cells.plan import Invocation
    from bench.cells.progress import QuietProgress
    from bench.store.tracker import Tracker

    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle")
    plan, key = _cell_key_of(argv, "mle", 0)
    tracker = Tracker(mlflow_uri, "rel")
    orphan = tracker.start("cell", {"kind": "method", "cell_key": key})  # the dead worker's run
    inv = Invocation(plan, None, tracker, "parent", {})
    schedule(_DeadWorkers(result), inv, [Cell("mle", 0, key)], QuietProgress())
    run = tracker.client.get_run(orphan)
    assert run.info.status == "KILLED" and run.data.tags["cell_status"] == status


def test_after_an_interrupt_cells_left_running_by_killed_workers_are_marked_killed(
    tmp_path, mlflow_uri
):
    """A worker still busy after the interrupt's grace is killed before it ends its run: the
    driver marks that run KILLED, but not a run whose cell another live process holds."""
    from bench.cells.checkpoint import cell_lock
    from bench.cells.executors import mark_lost_cells
    from bench.cells.keys import Cell
    from bench.cells.plan import Invocation
    from bench.store.tracker import Tracker

    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle,pretrained")
    (plan, mle), (_, pretrained) = _cell_key_of(argv, "mle", 0), _cell_key_of(argv, "pretrained", 0)
    tracker = Tracker(mlflow_uri, "rel")
    lost = tracker.start("mle", {"kind": "method", "cell_key": mle})
    held = tracker.start("pretrained", {"kind": "method", "cell_key": pretrained})
    inv = Invocation(plan, None, tracker, "parent", {})
    cells = [Cell("mle", 0, mle), Cell("pretrained", 0, pretrained)]
    # held as a live worker holds it (flock: another open file of the same process conflicts)
    with cell_lock(plan.cache_dir, pretrained) as mine:
        assert mine
        mark_lost_cells(inv, cells)
    run = tracker.client.get_run(lost)
    assert run.info.status == "KILLED" and run.data.tags["cell_status"] == "killed"
    assert tracker.client.get_run(held).info.status == "RUNNING"


@dataclass(frozen=True)
class _Job:
    value: int

    def __call__(self) -> str:
        if self.value < 0:
            os._exit(3)  # the worker dies without a result, as on an out-of-memory kill
        return f"ok {self.value} in {os.getpid()}"


def _pool_plan(jobs: int, cell_timeout: float = 0.0):
    from types import SimpleNamespace

    return SimpleNamespace(jobs=jobs, bench=SimpleNamespace(cell_timeout=cell_timeout))


def test_a_dying_worker_fails_only_its_own_job():
    from bench.cells.pool import ProcessPool

    results = {}
    with ProcessPool(_pool_plan(2)) as pool:
        pending = {pool.submit(_Job(v)): v for v in (1, -1, 2, 3)}
        while pending:
            handle, result = pool.wait_one(list(pending))
            results[pending.pop(handle)] = result
    assert results[-1] == worker_died(3) and results[-1].status is Status.KILLED
    assert str(results[-1]) == "killed: worker process died, exit code 3"
    assert all(results[v].startswith(f"ok {v} in ") for v in (1, 2, 3))
    pids = {results[v].rsplit(" ", 1)[1] for v in (1, 2, 3)}
    assert str(os.getpid()) not in pids and len(pids) == 3  # one process per job


def test_a_workers_interrupt_lost_in_a_finalizer_is_delivered_again():
    """Python ignores an exception raised inside `__del__` or a weakref callback; a worker's
    Ctrl-C (its SIGTERM's KeyboardInterrupt) landing there must still stop the cell."""
    code = """
import os, signal, sys, time
from bench.cells.pool import _init_worker, _interrupted
_init_worker(1, os.getppid())
class Finalized:
    def __del__(self):
        _interrupted(signal.SIGTERM, None)  # the interrupt lands in a finalizer
try:
    Finalized()
    for _ in range(200):
        time.sleep(0.01)  # the cell's training
    print("trained on")
except KeyboardInterrupt:
    print("interrupted")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "interrupted", done.stderr


def test_a_worker_whose_driver_is_already_gone_exits_at_once():
    """PR_SET_PDEATHSIG only fires for a parent that dies after the call; a worker whose driver
    died while it started (it was re-parented) must exit instead of training an orphan cell."""
    code = (
        "import os, sys; from bench.cells.pool import _init_worker; "
        "_init_worker(1, int(sys.argv[1])); print('survived')"
    )
    gone = subprocess.run(
        [sys.executable, "-c", code, str(os.getpid() + 10**6)], capture_output=True, text=True
    )
    assert gone.returncode == 1 and "survived" not in gone.stdout
    alive = subprocess.run(  # its parent is this process: it lives on
        [sys.executable, "-c", code, str(os.getpid())], capture_output=True, text=True
    )
    assert alive.returncode == 0 and alive.stdout.strip() == "survived"


@dataclass(frozen=True)
class _Hang:
    def __call__(self) -> str:
        time.sleep(120)  # a cell stuck where its own timer never fires
        return "never"


def test_a_worker_past_its_time_limit_is_killed_and_reported_timeout(monkeypatch):
    import bench.cells.pool
    from bench.cells.pool import ProcessPool

    monkeypatch.setattr(bench.cells.pool, "TIMEOUT_GRACE_S", 0.5)
    start = time.monotonic()
    with ProcessPool(_pool_plan(1, cell_timeout=1.0)) as pool:
        handle, result = pool.wait_one([pool.submit(_Hang())])
    assert result == worker_timed_out(0.5) and time.monotonic() - start < 60


def test_a_cell_past_its_time_limit_is_recorded_timeout_and_resumable(tmp_path, mlflow_uri):
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.sweep-alphas", "1")
    assert main([*argv, "--bench.cell-timeout", "0.001"]) == 1  # expires in pre-training
    (run,) = _runs(mlflow_uri)
    assert run.data.tags["cell_status"] == "timeout" and run.info.status == "KILLED"
    assert main(argv) == 0  # the limit is not part of the key: the same cell, run again
    statuses = sorted(r.data.tags["cell_status"] for r in _runs(mlflow_uri))
    assert statuses == ["finished", "timeout"]


def cells_without_result_exit_1(root, uri, *executor: str) -> None:
    """bench.run in a process of its own with every cell past a 1 ms limit: exit 1, the last
    stderr line names the four cells and why, and no run is left RUNNING."""
    argv = _argv(root, uri, "--methods", "mle,pretrained", "--seeds", "2", *executor)
    argv += ["--bench.sweep-alphas", "1", "--bench.cell-timeout", "0.001"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", *argv], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("bench.run: 4 of 4 cells have no result: "), last
    cells = last.split(": ")[2].split(", ")
    assert sorted(cells) == sorted(f"{m} seed {s}" for m in ("mle", "pretrained") for s in (0, 1))
    assert last.endswith(
        ": timeout: stopped after --bench.cell-timeout 0.001 s; a rerun resumes it "
        "(a rerun resumes or retries them)"
    )
    runs = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("rel").experiment_id]
    )
    assert runs and "RUNNING" not in {r.info.status for r in runs}


def test_jobs_exit_1_naming_every_cell_without_a_result(tmp_path, mlflow_uri):
    cells_without_result_exit_1(tmp_path, mlflow_uri, "--jobs", "2")


def test_stale_parent_runs_are_marked_killed(tmp_path, mlflow_uri):
    from bench.store.liveness import driver_tags
    from bench.store.tracker import Tracker

    tracker = Tracker(mlflow_uri, "rel")
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    )
    dead = driver_tags() | {"driver_pid": done.stdout.strip(), "driver_start": "1"}
    stale = tracker.start("dead", {"kind": "parent"} | dead)
    live = tracker.start("live", {"kind": "parent"} | driver_tags())
    elsewhere = tracker.start("other", {"kind": "parent"} | dead | {"driver_host": "elsewhere"})
    cell = tracker.start("mle-s0", {"kind": "method"}, parent=stale)  # its worker died too
    live_cell = tracker.start("mle-s1", {"kind": "method"}, parent=live)
    assert tracker.mark_stale_parents() == [stale]
    runs = (stale, live, elsewhere, cell, live_cell)
    status = {r: tracker.client.get_run(r).info.status for r in runs}
    assert status == {
        stale: "KILLED",
        live: "RUNNING",
        elsewhere: "RUNNING",
        cell: "KILLED",
        live_cell: "RUNNING",
    }
    assert tracker.client.get_run(cell).data.tags["cell_status"] == "killed"


@pytest.mark.slow
def test_an_interrupted_jobs_run_leaves_no_run_running(tmp_path, mlflow_uri):
    """SIGINT to the driver alone: its workers get the grace period to record their runs."""
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle,seqgan", "--jobs", "2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.run", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # as a terminal's Ctrl-C finds it: a test runner started in the background by a shell
        # without job control inherits SIGINT ignored, and Python then never raises on it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def cells_running():
        try:
            return len([r for r in _runs(mlflow_uri) if r.info.status == "RUNNING"]) == 2
        except Exception:  # the experiment may not exist yet
            return False

    deadline = time.time() + 300
    while not cells_running() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before both cells started"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    runs = _runs(mlflow_uri)
    assert {(r.info.status, r.data.tags["cell_status"]) for r in runs} == {("KILLED", "killed")}
    (parent,) = _runs(mlflow_uri, kind="parent")
    assert parent.info.status == "KILLED"
