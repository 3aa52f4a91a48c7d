"""One (method, seed) cell: its key, its training, its MLflow run and lifecycle; reference rows.

A cell is keyed by everything that determines its result, holds a lock while it runs, resumes
from its checkpoint, and ends with one status: finished, diverged, failed, timeout or killed.
A finished cell keeps its trained generator as the artifact generator.pt (`bench.stored`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from bench.checkpoint import (
    cell_busy,
    cell_lock,
    checkpoint_path,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from bench.cli import Plan
from bench.config import BenchConfig
from bench.evaluate import curve_point, final_metrics, sweep_key, temperature_sweep
from bench.loop import Diverged, LoopState, Phase, run_phase
from bench.pretrain import derive_seed, pretrain_key, pretrained_generator
from bench.progress import CellProgress
from bench.stats import sweep_best
from bench.stored import generator_record, log_generator
from bench.tracking import Tracker
from methods import METHODS
from methods.base import TrainContext
from methods.config import build, flatten, parse_floats
from methods.generator import UnigramModel
from oracle.data import Task

# bench settings that never change a result (resume is exact; a limit only stops a cell early),
# so they are not part of any key: any value finds the same cells
NOT_IN_KEYS = ("checkpoint_every", "cell_timeout")


@dataclass(frozen=True)
class Cell:
    """One (method, seed) pair of an invocation and its key."""

    method: str
    seed: int
    key: str

    @property
    def name(self) -> str:
        return f"{self.method}-s{self.seed}"


@dataclass
class Invocation:
    """What the cells of one `bench.run` invocation share: its plan, task, store and parent run."""

    plan: Plan
    task: Task
    tracker: Tracker
    parent: str  # the invocation's MLflow parent run
    tags: dict[str, str]  # environment and task tags every run of the invocation carries


class CellTimeout(BaseException):
    """A cell ran past --bench.cell-timeout (BaseException: no `except Exception` swallows it)."""


# ----- keys -----
def cell_key(plan: Plan, method: str, seed: int, task: Task) -> str:
    """Hash of everything that determines a cell's result: configs, task, seed, device, code."""
    return _key(
        plan,
        task,
        method=method,
        config=dataclasses.asdict(plan.configs[method]),
        pretrain=dataclasses.asdict(plan.pretrain),
        seed=seed,
    )


def reference_key(plan: Plan, name: str, task: Task) -> str:
    return _key(plan, task, reference=name)


def _key(plan: Plan, task: Task, **ident) -> str:
    ident |= dict(
        bench={k: v for k, v in dataclasses.asdict(plan.bench).items() if k not in NOT_IN_KEYS},
        oracle=task.identity,
        device=plan.device.type,
        code=plan.code,
        torch=torch.__version__,
    )
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def plan_cells(inv: Invocation, progress: CellProgress) -> list[Cell]:
    """The cells still to run: a cell finished in the store is reused (linked to this parent);
    a cell another live invocation is running is recorded on the parent as running elsewhere."""
    plan, tracker = inv.plan, inv.tracker
    todo = []
    for seed in plan.seeds:
        for method in plan.methods:
            cell = Cell(method, seed, cell_key(plan, method, seed, inv.task))
            done = None if plan.force else tracker.finished_run(cell.key)
            if done is not None:
                tracker.add_reused(inv.parent, done)
                progress.reused(method, seed, done)
            elif cell_busy(plan.cache_dir, cell.key):
                tracker.add_busy(inv.parent, cell.key, method, seed)
                progress.finished(method, seed, "running in another invocation, skipped")
            else:
                todo.append(cell)
    return todo


# ----- reference rows -----
def reference_models(task: Task) -> dict[str, object]:
    """Reference rows: the oracle itself (the floor), its unigram marginal, uniform tokens."""
    return {
        "oracle": task.oracle,
        "unigram": UnigramModel.from_counts(task.train, task.vocab_size),
        "uniform": UnigramModel.uniform(task.vocab_size, task.seq_len),
    }


def run_references(inv: Invocation) -> None:
    """The reference rows; like cells, reused from the store when already computed, and each
    computed under its lock, so two invocations started together compute it once."""
    plan, tracker, task = inv.plan, inv.tracker, inv.task
    for name, model in reference_models(task).items():
        key = reference_key(plan, name, task)
        with cell_lock(plan.cache_dir, key, wait=True):
            done = None if plan.force else tracker.finished_run(key)
            if done is not None:
                tracker.add_reused(inv.parent, done)
                continue
            tracker.mark_killed(key)
            run_tags = inv.tags | dict(kind="reference", method=name, seed="0", cell_key=key)
            run_id = tracker.start(f"ref-{name}", run_tags, inv.parent)
            metrics, _ = final_metrics(
                model.to(plan.device),
                task,
                plan.bench.final_samples,
                plan.bench.bleu_samples,
                plan.bench.eval_seed,
                plan.device,
            )
            tracker.log_metrics(run_id, 0, metrics)
            tracker.set_tags(run_id, {"cell_status": "finished"})
            tracker.end(run_id)


# ----- the shared pre-training, one run per key -----
def pretrain_seed(inv: Invocation, seed: int, progress) -> str:
    """Train (or load from the cache) the pre-training of `seed`, and make sure the store has it
    once: a run `pretrain-s<seed>` (tag kind=pretrain) with its learning curve, keyed like a
    cell by `pretrain_key`, so every method's own run starts at its own step 0. Returns its
    status: 'finished', 'reused' (a run of this key exists), or 'failed' (the cells will fail on
    it too, each with its own traceback)."""
    plan, tracker = inv.plan, inv.tracker
    key = pretrain_key(plan.pretrain, inv.task, plan.bench, seed, plan.device, plan.code)
    pretrain = partial(
        pretrained_generator,
        plan.pretrain,
        inv.task,
        plan.bench,
        seed,
        plan.device,
        plan.cache_dir,
        code=plan.code,
        tick=progress.tick,
    )
    with cell_lock(plan.cache_dir, f"pretrain-{key}", wait=True):
        if tracker.finished_run(key) is not None:
            pretrain()  # fills the cache if this cache directory lacks it
            return "reused"
        tracker.mark_killed(key)
        tags = inv.tags | dict(kind="pretrain", method="pretrain", seed=str(seed), cell_key=key)
        run_id = tracker.start(f"pretrain-s{seed}", tags, inv.parent)
        try:
            tracker.log_params(run_id, flatten(plan.pretrain, "pretrain") | {"seed": seed})
            splits = {"train": inv.task.train, "test": inv.task.test}
            tracker.log_datasets(run_id, inv.task.identity, splits)
            _, updates, seconds = pretrain(
                log=lambda step, metrics: tracker.log_metrics(run_id, step, metrics)
            )
        except KeyboardInterrupt:
            tracker.set_tags(run_id, {"cell_status": "killed"})
            tracker.end(run_id, "KILLED")
            raise
        except Exception as e:
            tracker.log_text(run_id, traceback.format_exc(), "traceback.txt")
            tracker.set_tags(run_id, {"cell_status": "failed", "error": f"{type(e).__name__}: {e}"})
            tracker.end(run_id, "FAILED")
            return "failed"
        tracker.log_metrics(run_id, updates, {"perf/pretrain_s": seconds})
        tracker.set_tags(run_id, {"cell_status": "finished"})
        tracker.end(run_id)
        return "finished"


# ----- training -----
def train_cell(
    inv: Invocation, cell: Cell, log, progress, ckpt: Path, on_resume
) -> tuple[object, dict, int]:
    """Pre-train (cached), then run the method, continuing from checkpoint `ckpt` if there is
    one (then `on_resume(step)` first); returns (generator, summary metrics, last step)."""
    plan, task = inv.plan, inv.task
    cfg, bench = plan.configs[cell.method], plan.bench
    saved = load_checkpoint(ckpt)
    trainer, rng, pre_seconds, setup_s = _setup(inv, cell, fresh=saved is None)
    curve, state = [], None
    if saved is not None:
        try:
            setup_s, curve, state = _restore(trainer, rng, saved)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:  # code changed under it
            print(f"bench.run: checkpoint {ckpt} does not fit ({e}); restarting", file=sys.stderr)
            remove_checkpoint(ckpt)
            trainer, rng, _, setup_s = _setup(inv, cell, fresh=True)
    if state is not None:
        on_resume(state.done)
        for step, metrics in curve:  # the curve so far, into this run: one curve, no gap
            log(step, metrics)
        progress.resumed(state.done)

    def evaluate():
        return curve_point(
            trainer.generator, task, bench.curve_samples, bench.eval_seed, plan.device
        )

    def record(step, metrics):
        curve.append((step, metrics))
        log(step, metrics)

    def checkpoint(state: LoopState):
        save_checkpoint(
            ckpt,
            {
                "trainer": trainer.state_dict(),
                "rng": rng.get_state(),
                "loop": dataclasses.asdict(state),
                "curve": curve,
                "setup_s": setup_s,
            },
        )

    # the method's own curve: step 0 is the pre-trained generator, seconds are its own
    phase = Phase(cfg.updates, cfg.eval_every, checkpoint_every=bench.checkpoint_every)
    perf = run_phase(
        trainer, phase, evaluate, record, bench.max_abs_loss, progress.tick, state, checkpoint
    )
    perf |= {"perf/setup_s": setup_s, "perf/pretrain_s": pre_seconds}
    return trainer.generator, perf, cfg.updates


def _setup(inv: Invocation, cell: Cell, fresh: bool):
    """(trainer on the cached pre-trained generator, its rng, pre-training seconds,
    construction seconds). `fresh=False` skips one-off work a checkpoint will supply."""
    plan, spec = inv.plan, METHODS[cell.method]
    gen, _, pre_seconds = pretrained_generator(
        plan.pretrain, inv.task, plan.bench, cell.seed, plan.device, plan.cache_dir, code=plan.code
    )
    rng = torch.Generator(device=plan.device).manual_seed(derive_seed(cell.seed, spec.name))
    t0 = time.perf_counter()
    ctx = TrainContext(inv.task, plan.device, rng, cell.seed, fresh=fresh)
    trainer = spec.make_trainer(plan.configs[spec.name], ctx, gen)
    return trainer, rng, pre_seconds, time.perf_counter() - t0


def _restore(trainer, rng: torch.Generator, saved: dict) -> tuple[float, list, LoopState]:
    """Load a checkpoint into a trainer built with fresh=False: (setup seconds, curve, state)."""
    state = LoopState(**saved["loop"])
    trainer.load_state_dict(saved["trainer"])
    rng.set_state(saved["rng"])
    return saved["setup_s"], saved["curve"], state


def budget_metrics(method: str, cfg, task: Task) -> dict[str, float]:
    """`resources/*` of this cell's config and `resources/paper_*` of the method's paper preset, on
    the same task: what the report's budget table divides."""
    spec = METHODS[method]
    sizes = (task.vocab_size, task.seq_len, task.train.shape[0])
    paper = build(spec.config, method, spec.presets["paper"], {})
    out = {}
    for prefix, budget in (
        ("resources/", spec.budget(cfg, *sizes)),
        ("resources/paper_", spec.budget(paper, *sizes)),
    ):
        out |= {f"{prefix}{k}": float(v) for k, v in dataclasses.asdict(budget).items()}
    return out


# ----- the lifecycle -----
def run_cell(inv: Invocation, cell: Cell, progress) -> str:
    """Train, evaluate and log one cell; returns its status. Never raises (but on Ctrl-C).

    Holds the cell's lock meanwhile: a second process started on the same cell skips it. The
    store is checked again under the lock: another invocation may have finished the cell since
    this one planned it, and only the lock holder may call a RUNNING run of the cell dead."""
    plan, tracker = inv.plan, inv.tracker
    with cell_lock(plan.cache_dir, cell.key) as held:
        if not held:
            tracker.add_busy(inv.parent, cell.key, cell.method, cell.seed)
            progress.done("busy", "running in another invocation, skipped")
            return "busy"
        done = None if plan.force else tracker.finished_run(cell.key)
        if done is not None:
            tracker.add_reused(inv.parent, done)
            progress.done("reused", "finished by another invocation meanwhile, reused")
            return "reused"
        tracker.mark_killed(cell.key)  # a run of this cell left RUNNING by a killed process
        return _run_cell(inv, cell, progress)


def _run_cell(inv: Invocation, cell: Cell, progress) -> str:
    plan, tracker = inv.plan, inv.tracker
    cfg = plan.configs[cell.method]
    cell_tags = dict(kind="method", method=cell.method, seed=str(cell.seed), pid=str(os.getpid()))
    run_id = tracker.start(cell.name, inv.tags | cell_tags | {"cell_key": cell.key}, inv.parent)
    params = (
        flatten(cfg, cell.method)
        | flatten(plan.pretrain, "pretrain")
        | dict(method=cell.method, seed=cell.seed, preset=plan.preset)
        | flatten(plan.bench, "bench")
    )

    def describe_run() -> None:  # inside the try below: a Ctrl-C here still ends the run KILLED
        tracker.log_params(run_id, params)
        tracker.log_json(run_id, params, "config.json")
        splits = {"train": inv.task.train, "test": inv.task.test}
        tracker.log_datasets(run_id, inv.task.identity, splits)
        tracker.log_metrics(run_id, 0, budget_metrics(cell.method, cfg, inv.task))

    def log(step, metrics):
        tracker.log_metrics(run_id, step, metrics)
        progress.evaluated(metrics)

    ckpt = checkpoint_path(plan.cache_dir, cell.key)
    if plan.force:  # --force: from scratch, not from a checkpoint of an earlier attempt
        remove_checkpoint(ckpt)

    def on_resume(step: int) -> None:
        tracker.set_tags(run_id, {"resumed_at_step": str(step)})

    keep_checkpoint = False  # a failed or timed-out cell keeps it: a rerun may continue
    try:
        describe_run()
        with time_limit(plan.bench.cell_timeout):
            gen, perf, last_step = train_cell(inv, cell, log, progress, ckpt, on_resume)
            final, samples = final_metrics(
                gen,
                inv.task,
                plan.bench.final_samples,
                plan.bench.bleu_samples,
                plan.bench.eval_seed,
                plan.device,
            )
            tracker.log_metrics(run_id, last_step, final | perf)
            log_sweep(plan, tracker, run_id, gen, inv.task, last_step)
        tracker.log_text(run_id, _samples_text(samples[:1000]), "samples.txt")
        # after every metric, from a CPU copy: keeping it changes no number and no stream
        record = generator_record(gen, cell.method, cell.seed, inv.task.identity, cell.key)
        log_generator(tracker, run_id, record)
        status, extra, mlflow_status = "finished", {}, "FINISHED"
    except Diverged as e:
        status, mlflow_status = "diverged", "FAILED"
        extra = {"diverged_step": e.step, "diverged_metric": e.key, "diverged_value": e.value}
    except CellTimeout:
        status, mlflow_status, keep_checkpoint = "timeout", "KILLED", True
        extra = {"timeout_s": plan.bench.cell_timeout}
    except KeyboardInterrupt:
        tracker.set_tags(run_id, {"cell_status": "killed"})
        tracker.end(run_id, "KILLED")
        raise
    except Exception as e:  # one broken cell must not stop the suite
        status, mlflow_status, keep_checkpoint = "failed", "FAILED", True
        extra = {"error": f"{type(e).__name__}: {e}"}
        tracker.log_text(run_id, traceback.format_exc(), "traceback.txt")
    if not keep_checkpoint:
        remove_checkpoint(ckpt)
    tracker.set_tags(run_id, {"cell_status": status} | extra)
    tracker.end(run_id, mlflow_status)
    progress.done(status, _describe(status, extra))
    return status


def _describe(status: str, extra: dict) -> str:
    """A status and its details as one sentence for the log."""
    if status == "diverged":
        return (
            f"diverged at step {extra['diverged_step']}: "
            f"{extra['diverged_metric']} = {extra['diverged_value']:.4g}"
        )
    if status == "timeout":
        return f"stopped after --bench.cell-timeout {extra['timeout_s']:g} s; a rerun resumes it"
    if status == "failed":
        return f"failed: {extra['error']} (traceback.txt in its MLflow run)"
    return status


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CellTimeout in this (main) thread once `seconds` of wall time pass; 0: no limit."""
    if seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise CellTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def log_sweep(plan: Plan, tracker: Tracker, run_id: str, model, task: Task, step: int) -> None:
    """The temperature sweep, one key per (metric, alpha) (`sweep_key`, each logged once, at
    `step`: a run page shows every point, none stands for the sweep), and its best point
    (sweep/best_sum, sweep/best_alpha)."""
    tracker.log_metrics(run_id, step, sweep_metrics(plan.bench, model, task, plan.device))


def sweep_metrics(bench: BenchConfig, model, task: Task, device) -> dict[str, float]:
    """What `log_sweep` logs: every `sweep_key` metric, sweep/best_sum and sweep/best_alpha."""
    alphas = parse_floats(bench.sweep_alphas)
    points = temperature_sweep(model, task, alphas, bench.sweep_samples, bench.eval_seed, device)
    metrics = {sweep_key(k, alpha): v for alpha, point in points for k, v in point.items()}
    best_sum, best_alpha = sweep_best(
        [alpha for alpha, _ in points],
        [point["sweep/nll_oracle"] for _, point in points],
        [point["sweep/nll_test"] for _, point in points],
    )
    return metrics | {"sweep/best_sum": best_sum, "sweep/best_alpha": best_alpha}


def _samples_text(samples: torch.Tensor) -> str:
    return "\n".join(" ".join(map(str, row)) for row in samples.tolist())
