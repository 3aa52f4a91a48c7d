"""`python -m bench.run`: train each selected method on each seed, track it in MLflow, report.

python -m bench.run --methods all --seeds 3 --preset quick
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import multiprocessing.connection
import os
import shlex
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.allocator import keep_freed_memory
from bench.checkpoint import (
    cell_busy,
    cell_lock,
    checkpoint_path,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from bench.config import PRESETS as BENCH_PRESETS
from bench.config import BenchConfig
from bench.evaluate import curve_point, final_metrics, temperature_sweep
from bench.loop import Diverged, LoopState, Phase, run_phase
from bench.pretrain import derive_seed, pretrained_generator
from bench.progress import CellProgress, QuietProgress
from bench.report import print_table, write_report
from bench.tracking import Tracker, TrackingError, default_uri, environment_tags, source_version
from methods import METHODS
from methods.base import PRESET_NAMES, MethodSpec, TrainContext
from methods.config import ConfigError, build, flatten, parse_floats
from methods.generator import UnigramModel
from oracle.data import DEFAULT_PAPER_ORACLE, OracleSpec, Task, build_oracle, load_task
from oracle.model import OracleFileError

ORACLES = ("random", "seqgan-paper")
DEVICES = ("auto", "cpu", "cuda")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option gets one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


@dataclass
class Plan:
    """Everything one invocation will do, resolved and validated before any work starts."""

    methods: list[str]
    seeds: list[int]
    preset: str
    device: torch.device
    oracle: OracleSpec
    tracking_uri: str
    experiment: str
    reports_dir: Path
    cache_dir: Path
    bench: BenchConfig
    configs: dict[str, object]  # method name -> its resolved Config; "mle" always present
    command: str
    code: str = "unknown"  # the code version in cell keys: `source_version()`, a source hash
    force: bool = False  # re-run cells already finished in the store
    executor: str = "local"  # local: cells one after another here; ray: one Ray task per cell
    ray_address: str | None = None  # None starts a local Ray cluster
    jobs: int = 1  # local executor: cells run in this many worker processes at once


# ----- command line -----
def _fields(cfg_cls: type) -> list[dataclasses.Field]:
    return list(dataclasses.fields(cfg_cls))


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m bench.run",
        description="Train generators of discrete sequences with each method on the same LSTM, "
        "score them against a known LSTM oracle, track in MLflow and print a comparison table.",
    )
    p.add_argument(
        "--methods", default="all", help=f"comma-separated methods, or 'all' ({', '.join(METHODS)})"
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        default=["1"],
        metavar="S",
        help="replicate seeds: one number N means N seeds (0..N-1); several numbers "
        "(or a comma list such as '7,') are the seeds themselves (default: 1 seed)",
    )
    p.add_argument(
        "--preset",
        default="quick",
        choices=PRESET_NAMES,
        help="smoke: under a minute, for tests; quick (default): the whole suite in "
        "~20 min on 2 CPU cores; paper: the SeqGAN paper's schedule, for a GPU",
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto picks CUDA when present")
    p.add_argument(
        "--oracle",
        default="random",
        choices=ORACLES,
        help="random: a seeded N(0,1) LSTM oracle; seqgan-paper: the paper's own "
        "parameter file (see --oracle-path)",
    )
    p.add_argument(
        "--oracle-path",
        default=str(DEFAULT_PAPER_ORACLE),
        help="the paper's target_params_py3.pkl (for --oracle seqgan-paper)",
    )
    p.add_argument(
        "--oracle-seed",
        default=66,
        type=int,
        help="task seed of the random oracle (default 66, the original code's seed)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the embedded "
        "SQLite store ./mlflow.db)",
    )
    p.add_argument("--experiment", default="seqgan-bench", help="MLflow experiment name")
    p.add_argument(
        "--reports-dir", default="reports", help="tables and plots go to <dir>/<experiment>/"
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="local: cells on this machine (see --jobs); ray: one Ray task per cell "
        "(needs pip install '.[ray]'), a GPU per task when the cluster has GPUs",
    )
    p.add_argument(
        "--jobs",
        default=1,
        type=int,
        metavar="N",
        help="local executor: run N cells at once in worker processes, each with "
        "cores/N torch threads (default 1: cells one after another in this process)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="address of a running Ray cluster (default: start a local one); its workers must "
        "reach --tracking-uri and --cache-dir",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="re-run cells that already finished in the MLflow store (default: reuse them)",
    )
    p.add_argument("--cache-dir", default=".cache", help="cached oracle data and MLE pre-trainings")
    _add_config_options(p, "bench", BenchConfig, "settings shared by all methods")
    for name, spec in METHODS.items():
        _add_config_options(p, name, spec.config, spec.summary)
    return p


def _add_config_options(p: argparse.ArgumentParser, prefix: str, cfg_cls: type, title: str):
    group = p.add_argument_group(f"{prefix}: {title}")
    for f in _fields(cfg_cls):
        flag = f"--{prefix}.{f.name.replace('_', '-')}"
        group.add_argument(
            flag,
            dest=f"cfg:{prefix}:{f.name}",
            default=None,
            metavar="V",
            help=f.metadata.get("help", ""),
        )


def parse_methods(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if names == ["all"]:
        return list(METHODS)
    valid = f"all, {', '.join(METHODS)}"
    if not any(names):
        raise ConfigError(f"--methods is empty; choose from {valid}")
    for n in names:
        if n not in METHODS:
            raise ConfigError(f"unknown method {n!r} in --methods; choose from {valid}")
        if names.count(n) > 1:
            raise ConfigError(f"method {n!r} is listed twice in --methods")
    return names


def parse_seeds(tokens: list[str]) -> list[int]:
    explicit = len(tokens) > 1 or "," in tokens[0]
    items = [t for tok in tokens for t in tok.split(",") if t.strip()]
    try:
        values = [int(t) for t in items]
    except ValueError:
        bad = next(t for t in items if not t.strip().lstrip("-").isdigit())
        raise ConfigError(f"--seeds {bad!r} is not an integer") from None
    if not values:
        raise ConfigError("--seeds is empty; give a count N or a list of seeds")
    if not explicit:
        if values[0] < 1:
            raise ConfigError(f"--seeds {values[0]}: a count of seeds must be >= 1")
        return list(range(values[0]))
    if any(v < 0 for v in values) or len(set(values)) != len(values):
        raise ConfigError(f"--seeds {','.join(items)}: seeds must be distinct and >= 0")
    return values


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_plan(argv: list[str] | None) -> Plan:
    args = build_parser().parse_args(argv)
    overrides: dict[str, dict[str, str]] = {}
    for dest, value in vars(args).items():
        if dest.startswith("cfg:") and value is not None:
            _, prefix, name = dest.split(":")
            overrides.setdefault(prefix, {})[name] = value
    methods = parse_methods(args.methods)
    for prefix, fields in overrides.items():
        if prefix not in ("bench", "mle", *methods):  # mle: the shared pre-training
            flag = f"--{prefix}.{next(iter(fields)).replace('_', '-')}"
            raise ConfigError(f"{flag} applies to method {prefix!r}, which is not in --methods")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be >= 1")
    if args.jobs > 1 and args.executor != "local":
        raise ConfigError(f"--jobs {args.jobs} applies to --executor local; Ray sizes itself")
    configs = {
        name: build(
            METHODS[name].config, name, METHODS[name].presets[args.preset], overrides.get(name, {})
        )
        for name in dict.fromkeys(["mle", *methods])
    }
    bench = build(BenchConfig, "bench", BENCH_PRESETS[args.preset], overrides.get("bench", {}))
    return Plan(
        methods=methods,
        seeds=parse_seeds(args.seeds),
        preset=args.preset,
        device=pick_device(args.device),
        oracle=OracleSpec(kind=args.oracle, seed=args.oracle_seed, path=args.oracle_path),
        tracking_uri=args.tracking_uri or default_uri(),
        experiment=args.experiment,
        reports_dir=Path(args.reports_dir),
        cache_dir=Path(args.cache_dir),
        bench=bench,
        configs=configs,
        force=args.force,
        executor=args.executor,
        ray_address=args.ray_address,
        jobs=args.jobs,
        code=source_version(),  # once per invocation, not per cell key
        command=shlex.join(["python", "-m", "bench.run", *(argv or sys.argv[1:])]),
    )


# ----- the work -----
def reference_models(task: Task) -> dict[str, object]:
    """Reference rows: the oracle itself (the floor), its unigram marginal, uniform tokens."""
    return {
        "oracle": task.oracle,
        "unigram": UnigramModel.from_counts(task.train, task.vocab_size),
        "uniform": UnigramModel.uniform(task.vocab_size, task.seq_len),
    }


def run_references(plan: Plan, task: Task, tracker: Tracker, parent: str, tags: dict) -> None:
    """The reference rows; like cells, reused from the store when already computed."""
    for name, model in reference_models(task).items():
        key = reference_key(plan, name, task)
        done = None if plan.force else tracker.finished_run(key)
        if done is not None:
            tracker.add_reused(parent, done)
            continue
        tracker.mark_killed(key)
        run_tags = tags | dict(kind="reference", method=name, seed="0", cell_key=key)
        run_id = tracker.start(f"ref-{name}", run_tags, parent)
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


def train_cell(
    plan: Plan, spec: MethodSpec, task: Task, seed: int, log, progress, ckpt: Path, on_resume
) -> tuple:
    """Pre-train (cached), then run the method, continuing from checkpoint `ckpt` if there is
    one (then `on_resume(step)` first); returns (generator, summary metrics, last step)."""
    cfg, bench = plan.configs[spec.name], plan.bench
    saved = load_checkpoint(ckpt)
    trainer, rng, (pre_updates, pre_seconds), setup_s = _setup(
        plan, spec, task, seed, log, progress, fresh=saved is None
    )
    curve, state = [], None
    if saved is not None:
        try:
            setup_s, curve, state = _restore(trainer, rng, saved)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:  # code changed under it
            print(f"bench.run: checkpoint {ckpt} does not fit ({e}); restarting", file=sys.stderr)
            remove_checkpoint(ckpt)
            silent = lambda step, m: None  # noqa: E731 (the pre-training curve is logged)
            trainer, rng, _, setup_s = _setup(plan, spec, task, seed, silent, progress, True)
    if state is not None:
        on_resume(pre_updates + state.done)
        for step, metrics in curve:  # the curve so far, into this run: one curve, no gap
            log(step, metrics)
    progress.pretrained(pre_updates + (state.done if state else 0))

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

    phase = Phase(cfg.updates, cfg.eval_every, pre_updates, pre_seconds, bench.checkpoint_every)
    perf = run_phase(
        trainer, phase, evaluate, record, bench.max_abs_loss, progress.tick, state, checkpoint
    )
    return trainer.generator, perf | {"perf/setup_s": setup_s}, pre_updates + cfg.updates


def _setup(plan: Plan, spec: MethodSpec, task: Task, seed: int, log, progress, fresh: bool):
    """(trainer on the cached pre-trained generator, its rng, (pre-training updates, seconds),
    construction seconds). `fresh=False` skips one-off work a checkpoint will supply."""
    gen, pre_updates, pre_seconds = pretrained_generator(
        plan.configs["mle"],
        task,
        plan.bench,
        seed,
        plan.device,
        plan.cache_dir,
        code=plan.code,
        log=log,
        tick=progress.tick,
    )
    rng = torch.Generator(device=plan.device).manual_seed(derive_seed(seed, spec.name))
    t0 = time.perf_counter()
    ctx = TrainContext(task, plan.device, rng, seed, fresh=fresh)
    trainer = spec.make_trainer(plan.configs[spec.name], ctx, gen)
    return trainer, rng, (pre_updates, pre_seconds), time.perf_counter() - t0


def _restore(trainer, rng: torch.Generator, saved: dict) -> tuple[float, list, LoopState]:
    """Load a checkpoint into a trainer built with fresh=False: (setup seconds, curve, state)."""
    state = LoopState(**saved["loop"])
    trainer.load_state_dict(saved["trainer"])
    rng.set_state(saved["rng"])
    return saved["setup_s"], saved["curve"], state


def run_cell(
    plan: Plan,
    spec: MethodSpec,
    task: Task,
    seed: int,
    tracker: Tracker,
    parent: str,
    tags: dict,
    progress: CellProgress,
) -> str:
    """Train, evaluate and log one (method, seed) cell; returns its status. Never raises.

    Holds the cell's lock meanwhile: a second process started on the same cell skips it. The
    store is checked again under the lock: another invocation may have finished the cell since
    this one planned it, and only the lock holder may call a RUNNING run of the cell dead."""
    key = tags["cell_key"]
    with cell_lock(plan.cache_dir, key) as held:
        if not held:
            progress.done("busy", {"reason": "running in another process"})
            return "busy"
        done = None if plan.force else tracker.finished_run(key)
        if done is not None:
            tracker.add_reused(parent, done)
            progress.done("reused", {"reason": "finished by another process meanwhile"})
            return "reused"
        tracker.mark_killed(key)  # a run of this cell left RUNNING by a killed process
        return _run_cell(plan, spec, task, seed, tracker, parent, tags, progress)


def _run_cell(
    plan: Plan,
    spec: MethodSpec,
    task: Task,
    seed: int,
    tracker: Tracker,
    parent: str,
    tags: dict,
    progress: CellProgress,
) -> str:
    cfg = plan.configs[spec.name]
    cell_tags = dict(kind="method", method=spec.name, seed=str(seed), pid=str(os.getpid()))
    run_id = tracker.start(f"{spec.name}-s{seed}", tags | cell_tags, parent)
    params = (
        flatten(cfg, spec.name)
        | flatten(plan.configs["mle"], "pretrain")
        | dict(method=spec.name, seed=seed, preset=plan.preset)
        | flatten(plan.bench, "bench")
    )
    tracker.log_params(run_id, params)
    tracker.log_json(run_id, params, "config.json")

    def log(step, metrics):
        tracker.log_metrics(run_id, step, metrics)
        progress.evaluated(metrics)

    ckpt = checkpoint_path(plan.cache_dir, tags["cell_key"])
    if plan.force:  # --force: from scratch, not from a checkpoint of an earlier attempt
        remove_checkpoint(ckpt)

    def on_resume(step: int) -> None:
        tracker.set_tags(run_id, {"resumed_at_step": str(step)})

    try:
        gen, perf, last_step = train_cell(plan, spec, task, seed, log, progress, ckpt, on_resume)
        final, samples = final_metrics(
            gen,
            task,
            plan.bench.final_samples,
            plan.bench.bleu_samples,
            plan.bench.eval_seed,
            plan.device,
        )
        tracker.log_metrics(run_id, last_step, final | perf)
        log_sweep(plan, tracker, run_id, gen, task)
        tracker.log_text(run_id, _samples_text(samples[:1000]), "samples.txt")
        status, extra, mlflow_status = "finished", {}, "FINISHED"
    except Diverged as e:
        status, mlflow_status = "diverged", "FAILED"
        extra = {"diverged_step": e.step, "diverged_metric": e.key, "diverged_value": e.value}
    except KeyboardInterrupt:
        tracker.set_tags(run_id, {"cell_status": "killed"})
        tracker.end(run_id, "KILLED")
        raise
    except Exception as e:  # one broken cell must not stop the suite
        status, mlflow_status = "failed", "FAILED"
        extra = {"error": f"{type(e).__name__}: {e}"}
        tracker.log_text(run_id, traceback.format_exc(), "traceback.txt")
    if status != "failed":  # a failed cell keeps its checkpoint: a fix may let it continue
        remove_checkpoint(ckpt)
    tracker.set_tags(run_id, {"cell_status": status} | extra)
    tracker.end(run_id, mlflow_status)
    progress.done(status, extra)
    return status


def log_sweep(plan: Plan, tracker: Tracker, run_id: str, model, task: Task) -> None:
    """The temperature sweep, logged with step = round(100 * alpha) as Caccia et al.'s CSVs."""
    alphas = parse_floats(plan.bench.sweep_alphas)
    bench = plan.bench
    for alpha, metrics in temperature_sweep(
        model, task, alphas, bench.sweep_samples, bench.eval_seed, plan.device
    ):
        tracker.log_metrics(run_id, round(100 * alpha), metrics | {"sweep/alpha": alpha})


def _samples_text(samples: torch.Tensor) -> str:
    return "\n".join(" ".join(map(str, row)) for row in samples.tolist())


def check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"reports directory {str(path)!r} is not writable ({e.strerror}); pass --reports-dir"
        ) from None


def execute(plan: Plan) -> int:
    keep_freed_memory()  # every update would page-fault its temporaries afresh otherwise
    out_dir = plan.reports_dir / plan.experiment
    build_oracle(plan.oracle)  # a bad oracle file fails here, before anything is written
    check_writable(out_dir)
    tracker = Tracker(plan.tracking_uri, plan.experiment)
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    task.oracle.to(plan.device)
    tags = environment_tags(plan.device) | {
        "oracle": task.identity,
        "oracle_kind": plan.oracle.kind,
    }
    parent = tracker.start(
        f"bench-{time.strftime('%Y%m%d-%H%M%S')}",
        tags | {"kind": "parent", "command": plan.command},
    )
    tracker.log_params(
        parent,
        {
            "preset": plan.preset,
            "methods": ",".join(plan.methods),
            "seeds": ",".join(map(str, plan.seeds)),
        }
        | flatten(plan.bench, "bench")
        | {k: v for name, c in plan.configs.items() for k, v in flatten(c, name).items()},
    )
    try:
        run_references(plan, task, tracker, parent, tags)
        run_cells(plan, task, tracker, parent, tags)
    except KeyboardInterrupt:
        tracker.end(parent, "KILLED")
        raise
    except BaseException:  # finished cells are in the store; `bench.report` can still show them
        tracker.end(parent, "FAILED")
        raise
    tracker.end(parent)
    return report(tracker, parent, out_dir, plan)


def cell_key(plan: Plan, name: str, seed: int, task: Task) -> str:
    """Hash of everything that determines a cell's result: configs, task, seed, device, code."""
    return _key(
        plan,
        task,
        method=name,
        config=dataclasses.asdict(plan.configs[name]),
        pretrain=dataclasses.asdict(plan.configs["mle"]),
        seed=seed,
    )


def reference_key(plan: Plan, name: str, task: Task) -> str:
    return _key(plan, task, reference=name)


def _key(plan: Plan, task: Task, **ident) -> str:
    ident |= dict(
        # checkpoints do not change results (resume is exact): any interval finds the same cell
        bench={k: v for k, v in dataclasses.asdict(plan.bench).items() if k != "checkpoint_every"},
        oracle=task.identity,
        device=plan.device.type,
        code=plan.code,
        torch=torch.__version__,
    )
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def run_cells(plan: Plan, task: Task, tracker: Tracker, parent: str, tags: dict) -> None:
    """Every (method, seed) cell; a cell already finished in the store is reused, not re-run."""
    todo = []
    with CellProgress(plan, len(plan.seeds) * len(plan.methods)) as progress:
        for seed in plan.seeds:
            for name in plan.methods:
                key = cell_key(plan, name, seed, task)
                done = None if plan.force else tracker.finished_run(key)
                if done is not None:
                    tracker.add_reused(parent, done)
                    progress.reused(name, seed, done)
                    continue
                if cell_busy(plan.cache_dir, key):  # another live invocation is running it
                    progress.finished(name, seed, "busy: running in another process, skipped")
                    continue
                todo.append((name, seed, tags | {"cell_key": key}))
        if plan.executor == "ray":
            schedule(RayPool(plan), plan, tracker, parent, todo, progress)
        elif plan.jobs > 1:
            with ProcessPool(plan) as pool:
                schedule(pool, plan, tracker, parent, todo, progress)
        else:
            for name, seed, cell_tags in todo:
                progress.start(name, seed)
                run_cell(plan, METHODS[name], task, seed, tracker, parent, cell_tags, progress)


# ----- cells in worker processes: --jobs N, or Ray tasks -----
def schedule(
    pool, plan: Plan, tracker: Tracker, parent: str, todo: list, progress: CellProgress
) -> None:
    """Each seed's shared MLE pre-training first (once, not once per cell), then its cells;
    every worker logs its cell to MLflow itself, this process follows their statuses and
    records a cell whose worker died (its run would otherwise stay RUNNING) as killed."""
    pending = {
        pool.submit(remote_pretrain, plan, seed): ("pretrain", seed, None)
        for seed in dict.fromkeys(seed for _, seed, _ in todo)
    }
    while pending:
        handle, result = pool.wait_one(list(pending))
        name, seed, cell_tags = pending.pop(handle)
        if name == "pretrain":
            if result:  # the cells will fail on it too, each with its own traceback
                progress.note(f"pre-training of seed {seed} failed: {result}")
            for cell in (c for c in todo if c[1] == seed):
                pending[pool.submit(remote_cell, plan, *cell[:2], parent, cell[2])] = cell
        else:
            if result.startswith("failed ("):  # the worker died, or failed outside the cell
                key = cell_tags["cell_key"]
                with cell_lock(plan.cache_dir, key) as held:  # free once its holder is dead
                    if held:
                        tracker.mark_killed(key)
            progress.finished(name, seed, result)


def remote_pretrain(plan: Plan, seed: int) -> str:
    """Fill the pre-training cache for `seed` in a worker; '' when done, else the error."""
    try:
        task = _worker_task(plan)
        mle_cfg, bench = plan.configs["mle"], plan.bench
        pretrained_generator(
            mle_cfg, task, bench, seed, plan.device, plan.cache_dir, code=plan.code
        )
        return ""
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def remote_cell(plan: Plan, name: str, seed: int, parent: str, tags: dict) -> str:
    """A cell in a worker process: its own task data (from the cache), device and tracker."""
    task = _worker_task(plan)
    tracker = Tracker(plan.tracking_uri, plan.experiment)
    return run_cell(plan, METHODS[name], task, seed, tracker, parent, tags, QuietProgress())


def _worker_task(plan: Plan) -> Task:
    keep_freed_memory()  # as in the driver: --jobs workers and Ray tasks train cells too
    plan.device = pick_device("auto" if plan.device.type == "cuda" else plan.device.type)
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    task.oracle.to(plan.device)
    return task


class ProcessPool:
    """--jobs N: at most N spawned worker processes on this machine, one per job, cores shared
    evenly among them (torch's default of all cores per process makes N busy processes thrash).

    One process per job, not a `ProcessPoolExecutor`: there, one worker that dies (out of
    memory, a segfault) breaks the whole pool and kills its siblings' cells; here it fails only
    its own job. Starting a process costs seconds; a cell takes minutes."""

    def __init__(self, plan: Plan) -> None:
        self.jobs, self.threads = plan.jobs, max(1, _usable_cores() // plan.jobs)
        self.context = multiprocessing.get_context("spawn")  # fork and torch threads don't mix
        self.queued: deque = deque()  # (handle, fn, args) not started yet
        self.running: dict[int, tuple] = {}  # handle -> (process, its result pipe)
        self.handles = itertools.count()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc) -> None:
        # normally nothing is left; on an interrupt, don't wait hours for running cells
        self.queued.clear()
        for process, _ in self.running.values():
            process.kill()
            process.join()

    def submit(self, fn, *args) -> int:
        handle = next(self.handles)
        self.queued.append((handle, fn, args))
        self._start_queued()
        return handle

    def _start_queued(self) -> None:
        while self.queued and len(self.running) < self.jobs:
            handle, fn, args = self.queued.popleft()
            receive, send = self.context.Pipe(duplex=False)
            process = self.context.Process(target=_worker_main, args=(send, self.threads, fn, args))
            process.start()
            send.close()  # the child holds the only writer: EOF on receive once it is gone
            self.running[handle] = (process, receive)

    def wait_one(self, handles: list[int]) -> tuple[int, str]:
        """The next of `handles` to finish and its result (a worker that died: 'failed (...)')."""
        by_pipe = {pipe: h for h, (_, pipe) in self.running.items() if h in handles}
        pipe = multiprocessing.connection.wait(list(by_pipe))[0]
        handle = by_pipe[pipe]
        process, _ = self.running.pop(handle)
        try:
            result = pipe.recv()
        except EOFError:  # closed without a result: the process died
            result = None
        process.join()  # before reading its exit code
        pipe.close()
        if result is None:
            result = f"failed (worker process died, exit code {process.exitcode})"
        self._start_queued()
        return handle, result


def _worker_main(pipe, threads: int, fn, args) -> None:
    """A --jobs worker: one job, its result (or its error, as text) sent back to the driver."""
    _init_worker(threads)
    try:
        result = fn(*args)
    except Exception as e:  # failed outside its cell's own error handling
        result = f"failed ({type(e).__name__}: {e})"
    pipe.send(result)
    pipe.close()


def _usable_cores() -> int:
    """Cores this process may run on (affinity and cpusets count, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    try:  # Linux: die with the driver, so a killed run leaves no orphan training a cell
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class RayPool:
    """--executor ray: one Ray task per job, a GPU each when the cluster has GPUs."""

    def __init__(self, plan: Plan) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install '.[ray]'") from None
        ray.init(
            address=plan.ray_address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
        )
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self.ray, self.options = ray, dict(num_cpus=1, num_gpus=gpus, max_retries=0)
        self.remote = {}

    def submit(self, fn, *args):
        if fn not in self.remote:
            self.remote[fn] = self.ray.remote(**self.options)(fn)
        return self.remote[fn].remote(*args)

    def wait_one(self, handles: list) -> tuple[object, str]:
        ready, _ = self.ray.wait(handles, num_returns=1)
        try:
            return ready[0], self.ray.get(ready[0])
        except Exception as e:  # a task's worker died or failed outside its cell
            return ready[0], f"failed ({type(e).__name__}: {e})"


def report(tracker: Tracker, parent: str, out_dir: Path, plan: Plan) -> int:
    try:
        table = write_report(tracker, parent, out_dir)
    except OSError as e:
        print(
            f"bench.run: error: cannot write the report to {str(out_dir)!r} ({e.strerror}); "
            f"every run is stored in MLflow: rebuild with python -m bench.report "
            f"--experiment {plan.experiment} --run-id {parent}",
            file=sys.stderr,
        )
        return 2
    print_table(table, f"{plan.experiment}: preset {plan.preset}, oracle {plan.oracle.kind}")
    print(
        f"report: {out_dir / 'README.md'}  (MLflow parent run {parent}, store {plan.tracking_uri})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        plan = make_plan(argv)
        return execute(plan)
    except (ConfigError, OracleFileError, TrackingError) as e:
        print(f"bench.run: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench.run: interrupted; finished cells are stored in MLflow", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
