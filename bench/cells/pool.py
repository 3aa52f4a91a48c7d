"""`--jobs N`: cells in at most N spawned worker processes on this machine, one per job."""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections import deque

import torch

from bench.cells.plan import Plan
from bench.cells.results import CellResult, worker_died, worker_error, worker_timed_out

INTERRUPT_GRACE_S = 5.0  # on Ctrl-C, workers get this long to record their runs KILLED
TIMEOUT_GRACE_S = 30.0  # a worker still alive this long past its cell's own time limit is killed


class ProcessPool:
    """--jobs N: at most N spawned worker processes on this machine, one per job, cores shared
    evenly among them (torch's default of all cores per process makes N busy processes thrash).

    One process per job, not a `ProcessPoolExecutor`: there, one worker that dies (out of
    memory, a segfault) breaks the whole pool and kills its siblings' cells; here it fails only
    its own job. Starting a process costs seconds; a cell takes minutes. A worker still running
    `TIMEOUT_GRACE_S` after its cell's --bench.cell-timeout (hung where the cell's own timer
    cannot fire) is killed and reported as a timeout."""

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

    def wait_one(self, handles: list[int]) -> tuple[int, CellResult]:
        """The next of `handles` to finish and its result (a worker that died, or was killed for
        running past its time limit: a result with `worker_lost`)."""
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
            result = worker_timed_out(TIMEOUT_GRACE_S)
        elif result is None:
            result = worker_died(process.exitcode)
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
    """A --jobs worker: one job, its result (a CellResult) sent back to the driver."""
    _init_worker(threads, driver_pid)
    try:
        result = job()
    except KeyboardInterrupt:  # Ctrl-C: the cell recorded its run KILLED; nothing to send
        sys.exit(130)
    except Exception as e:  # failed outside its cell's own error handling
        result = worker_error(e)
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
    sys.unraisablehook = _reraise_lost_interrupt
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


def _reraise_lost_interrupt(unraisable) -> None:
    """Python ignores an exception raised inside a finalizer (a weakref callback, `__del__`),
    and SQLAlchemy's run there often: a SIGTERM's KeyboardInterrupt landing in one would be lost
    and the cell would train on. Deliver it again, from another thread a moment later, so that
    it is raised once the finalizer has returned."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        signal.signal(signal.SIGTERM, _interrupted)
        again = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
        again.daemon = True
        again.start()
        return
    sys.__unraisablehook__(unraisable)
