"""Where cells run: here one after another, in `--jobs N` worker processes, or as Ray tasks.

Each seed's shared MLE pre-training runs once first (a `PretrainJob`), then its cells
(`CellJob`s). Every worker logs its own cell to MLflow; the driver follows their results and
records a cell whose worker died (its run would otherwise stay RUNNING) as killed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.allocator import keep_freed_memory
from bench.cells import Cell, Invocation, pretrain_seed, run_cell
from bench.checkpoint import cell_lock
from bench.cli import Plan, pick_device
from bench.progress import CellProgress, QuietProgress
from bench.tracking import Tracker
from methods.config import ConfigError
from oracle.data import Task, load_task

INTERRUPT_GRACE_S = 5.0  # on Ctrl-C, workers get this long to record their runs KILLED
TIMEOUT_GRACE_S = 30.0  # a worker still alive this long past its cell's own time limit is killed


def run_cells(inv: Invocation, todo: list[Cell], progress: CellProgress) -> None:
    """Run `todo` with the plan's executor."""
    plan = inv.plan
    if plan.executor == "ray":
        schedule(RayPool(plan), inv, todo, progress)
    elif plan.jobs > 1:
        with ProcessPool(plan) as pool:
            schedule(pool, inv, todo, progress)
    else:
        for seed in dict.fromkeys(cell.seed for cell in todo):
            progress.start_pretraining(seed)
            pretrain_seed(inv, seed, progress)
            for cell in (c for c in todo if c.seed == seed):
                progress.start(cell.method, cell.seed)
                run_cell(inv, cell, progress)


# ----- jobs: what a worker runs -----
@dataclass(frozen=True)
class PretrainJob:
    """The pre-training of one seed and its run in the store; '' when done, else the error."""

    plan: Plan
    seed: int
    parent: str
    tags: dict

    def __call__(self) -> str:
        try:
            plan, task = worker_setup(self.plan)
            tracker = Tracker(plan.tracking_uri, plan.experiment)
            inv = Invocation(plan, task, tracker, self.parent, self.tags)
            status = pretrain_seed(inv, self.seed, QuietProgress())
            return "" if status != "failed" else "failed (see its pretrain run's traceback)"
        except Exception as e:
            return f"{type(e).__name__}: {e}"


@dataclass(frozen=True)
class CellJob:
    """One cell in a worker: its own task data (from the cache), device and tracker."""

    plan: Plan
    cell: Cell
    parent: str
    tags: dict

    def __call__(self) -> str:
        plan, task = worker_setup(self.plan)
        tracker = Tracker(plan.tracking_uri, plan.experiment)
        inv = Invocation(plan, task, tracker, self.parent, self.tags)
        return run_cell(inv, self.cell, QuietProgress())


def worker_setup(plan: Plan) -> tuple[Plan, Task]:
    """A worker's own plan (its device: a Ray worker's GPU) and the task data, from the cache."""
    keep_freed_memory()  # as in the driver: --jobs workers and Ray tasks train cells too
    plan = dataclasses.replace(
        plan, device=pick_device("auto" if plan.device.type == "cuda" else plan.device.type)
    )
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    task.oracle.to(plan.device)
    return plan, task


def schedule(pool, inv: Invocation, todo: list[Cell], progress: CellProgress) -> None:
    """Each seed's pre-training first (once, not once per cell), then its cells."""
    plan, tracker = inv.plan, inv.tracker
    jobs = [PretrainJob(plan, seed, inv.parent, inv.tags) for seed in {c.seed: 0 for c in todo}]
    pending = {pool.submit(job): job for job in jobs}
    while pending:
        handle, result = pool.wait_one(list(pending))
        job = pending.pop(handle)
        if isinstance(job, PretrainJob):
            if result:  # the cells will fail on it too, each with its own traceback
                progress.note(f"pre-training of seed {job.seed} failed: {result}")
            for cell in (c for c in todo if c.seed == job.seed):
                cell_job = CellJob(plan, cell, inv.parent, inv.tags)
                pending[pool.submit(cell_job)] = cell_job
            continue
        cell = job.cell
        if result.startswith(("failed (", "timeout (")):  # the worker died or was killed
            status = result.split(" ", 1)[0].replace("failed", "killed")
            with cell_lock(plan.cache_dir, cell.key) as held:  # free once its holder is dead
                if held:
                    tracker.mark_killed(cell.key, status)
        progress.finished(cell.method, cell.seed, result)


# ----- --jobs N: worker processes on this machine -----
class ProcessPool:
    """--jobs N: at most N spawned worker processes on this machine, one per job, cores shared
    evenly among them (torch's default of all cores per process makes N busy processes thrash).

    One process per job, not a `ProcessPoolExecutor`: there, one worker that dies (out of
    memory, a segfault) breaks the whole pool and kills its siblings' cells; here it fails only
    its own job. Starting a process costs seconds; a cell takes minutes. A worker still running
    `TIMEOUT_GRACE_S` after its cell's --bench.cell-timeout (hung where the cell's own timer
    cannot fire) is killed and reported as 'timeout (...)'."""

    def __init__(self, plan: Plan) -> None:
        self.jobs, self.threads = plan.jobs, max(1, usable_cores() // plan.jobs)
        limit = plan.bench.cell_timeout
        self.hard_limit = limit + TIMEOUT_GRACE_S if limit > 0 else None
        self.context = multiprocessing.get_context("spawn")  # fork and torch threads don't mix
        self.queued: deque = deque()  # (handle, job) not started yet
        self.running: dict[int, tuple] = {}  # handle -> (process, its result pipe, start time)
        self.handles = itertools.count()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        """Normally nothing is left. On an interrupt, give running workers INTERRUPT_GRACE_S to
        record their runs KILLED (a SIGTERM each, which a worker turns into one KeyboardInterrupt;
        workers ignore the terminal's SIGINT so that no second interrupt cuts that short), then
        kill what is left; never wait hours for running cells."""
        self.queued.clear()
        processes = [process for process, _, _ in self.running.values()]
        if exc_type is not None:
            for process in processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)  # a KeyboardInterrupt there
            deadline = time.monotonic() + INTERRUPT_GRACE_S
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            process.kill()
            process.join()

    def submit(self, job) -> int:
        handle = next(self.handles)
        self.queued.append((handle, job))
        self._start_queued()
        return handle

    def _start_queued(self) -> None:
        while self.queued and len(self.running) < self.jobs:
            handle, job = self.queued.popleft()
            receive, send = self.context.Pipe(duplex=False)
            process = self.context.Process(
                target=_worker_main, args=(send, self.threads, os.getpid(), job)
            )
            process.start()
            send.close()  # the child holds the only writer: EOF on receive once it is gone
            self.running[handle] = (process, receive, time.monotonic())

    def wait_one(self, handles: list[int]) -> tuple[int, str]:
        """The next of `handles` to finish and its result (a worker that died: 'failed (...)';
        one killed for running past its time limit: 'timeout (...)')."""
        by_pipe = {pipe: h for h, (_, pipe, _) in self.running.items() if h in handles}
        while True:
            ready = multiprocessing.connection.wait(list(by_pipe), timeout=self._next_deadline())
            if ready:
                handle = by_pipe[ready[0]]
                break
            overdue = self._overdue(handles)
            if overdue is not None:
                process, _, _ = self.running[overdue]
                process.kill()  # its pipe now reads EOF: reported below
                process.join()
                self.running[overdue] = (*self.running[overdue][:2], None)
        process, pipe, started = self.running.pop(handle)
        try:
            result = pipe.recv()
        except EOFError:  # closed without a result: the process died
            result = None
        process.join()  # before reading its exit code
        pipe.close()
        if result is None and started is None:
            result = f"timeout (worker killed {TIMEOUT_GRACE_S:g} s past --bench.cell-timeout)"
        elif result is None:
            result = f"failed (worker process died, exit code {process.exitcode})"
        self._start_queued()
        return handle, result

    def _next_deadline(self) -> float | None:
        """Seconds until the next running job passes the hard limit (None: no limit)."""
        if self.hard_limit is None:
            return None
        starts = [s for _, _, s in self.running.values() if s is not None]
        if not starts:
            return None
        return max(0.0, min(starts) + self.hard_limit - time.monotonic())

    def _overdue(self, handles: list[int]) -> int | None:
        now = time.monotonic()
        for h in handles:
            started = self.running[h][2]
            if started is not None and now - started >= self.hard_limit:
                return h
        return None


def _worker_main(pipe, threads: int, driver_pid: int, job) -> None:
    """A --jobs worker: one job, its result (or its error, as text) sent back to the driver."""
    _init_worker(threads, driver_pid)
    try:
        result = job()
    except KeyboardInterrupt:  # Ctrl-C: the cell recorded its run KILLED; nothing to send
        sys.exit(130)
    except Exception as e:  # failed outside its cell's own error handling
        result = f"failed ({type(e).__name__}: {e})"
    pipe.send(result)
    pipe.close()


def usable_cores() -> int:
    """Cores this process may run on (affinity and cpusets count, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker(threads: int, driver_pid: int) -> None:
    """Threads, and on Linux: die with the driver, so a killed run leaves no orphan training a
    cell. PR_SET_PDEATHSIG only covers a driver that dies after the call: one already gone (the
    worker was re-parented) means exit now."""
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches workers as one SIGTERM
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != driver_pid:
        os._exit(1)


def _interrupted(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the cell record its run
    raise KeyboardInterrupt


# ----- --executor ray -----
RAY_EXCLUDES = [".git", ".venv", ".tox", ".cache", "mlruns", "mlartifacts", "*.db", "reports"]


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


class RayPool:
    """--executor ray: one Ray task per job, a GPU each when the cluster has GPUs.

    The driver's code is shipped to the workers (`runtime_env` working_dir): cells are keyed by
    the driver's source hash, so a worker running other code would mislabel its results. A task
    whose worker dies is retried (cells resume exactly from their checkpoints, so a retry is
    safe), and workers' output reaches the driver's log."""

    RETRIES = 2

    def __init__(self, plan: Plan) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install '.[ray]'") from None
        runtime_env = {"working_dir": str(project_root()), "excludes": RAY_EXCLUDES}
        if ray.is_initialized():  # by the caller: its job-level runtime_env applies, not ours
            if "working_dir" not in ray.get_runtime_context().runtime_env:
                print(
                    "bench.run: Ray was initialised without a runtime_env working_dir: its "
                    "workers run whatever code they find, not necessarily this driver's",
                    file=sys.stderr,
                )
        else:  # working_dir uploads are only possible at the job level (ray.init)
            ray.init(
                address=plan.ray_address,
                include_dashboard=False,
                log_to_driver=True,
                runtime_env=runtime_env,
            )
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        options = dict(num_cpus=1, num_gpus=gpus, max_retries=self.RETRIES)
        self.ray, self.remote = ray, ray.remote(**options)(_run_job)

    def submit(self, job):
        # a task runs in its unpacked copy of the working tree: paths must not be relative
        return self.remote.remote(dataclasses.replace(job, plan=absolute_paths(job.plan)))

    def wait_one(self, handles: list) -> tuple[object, str]:
        ready, _ = self.ray.wait(handles, num_returns=1)
        try:
            return ready[0], self.ray.get(ready[0])
        except Exception as e:  # a task's worker died (retries used up) or failed outside it
            return ready[0], f"failed ({type(e).__name__}: {e})"


def _run_job(job) -> str:
    return job()


def absolute_paths(plan: Plan) -> Plan:
    """The plan with its cache directory, oracle file and SQLite store as absolute paths."""
    uri = plan.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    oracle = dataclasses.replace(plan.oracle, path=str(Path(plan.oracle.path).resolve()))
    return dataclasses.replace(
        plan, cache_dir=plan.cache_dir.resolve(), oracle=oracle, tracking_uri=uri
    )
