"""One (method, seed) cell's training and evaluation, with no store: what its key hashes.

From the seed's cached pre-training, the method's trainer runs its phase (continuing a
checkpoint when there is one); then the final metrics and the temperature sweep score it. The
MLflow run around it is `bench.cells.lifecycle`'s.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from bench.metrics.evaluate import EvalSettings, final_metrics, sweep_metrics
from bench.train.loop import LoopState, Metrics, Phase, PhaseHooks, run_phase
from bench.train.pretrain import Pretraining, derive_seed
from bench.train.stopwatch import Stopwatch
from methods.base import MethodSpec, TrainContext
from methods.config import build
from methods.generator import LSTMGenerator


class Checkpoints(Protocol):
    """Where a cell's training state is kept between kills (`bench.cells.checkpoint`)."""

    def load(self) -> dict | None: ...

    def save(self, state: dict) -> None: ...

    def discard(self) -> None: ...


@dataclass(frozen=True)
class CellSpec:
    """What one cell trains: a method with its config, on a seed's pre-training."""

    spec: MethodSpec
    cfg: object
    seed: int
    pretraining: Pretraining

    @property
    def ev(self) -> EvalSettings:
        return EvalSettings.of(self.pretraining.bench, self.pretraining.device)


@dataclass
class Hooks:
    """What the caller hears while a cell trains."""

    log: Callable[[int, Metrics], None]  # each evaluation point: (step, metrics)
    tick: Callable[[Metrics], None] = lambda scalars: None  # each update
    resumed: Callable[[int], None] = lambda step: None  # continued from a checkpoint at `step`


@dataclass(frozen=True)
class Trained:
    generator: LSTMGenerator
    perf: Metrics  # perf/*_mean of the phase and perf/pretrain_s (the parts: the stopwatch's)
    last_step: int


def train_cell(
    cell: CellSpec, checkpoints: Checkpoints, hooks: Hooks, clock: Stopwatch | None = None
) -> Trained:
    """Pre-train (cached), then run the method's phase, continuing a checkpoint if there is one
    (then `hooks.resumed(step)` first and the curve so far replayed into `hooks.log`). `clock`
    gets the parts pretrain_load, setup, train, curve_eval and checkpoint (the killed
    processes' shares from the checkpoint)."""
    clock = clock or Stopwatch()
    with clock.part("checkpoint"):
        saved = checkpoints.load()
    trainer, rng, pre_seconds, setup_s = _setup(cell, saved is None, clock)
    curve: list[tuple[int, Metrics]] = []
    state = None
    if saved is not None:
        try:
            setup_s, curve, state = _restore(trainer, rng, saved)
            clock.resume(saved["clock"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:  # code changed under it
            print(
                f"bench.run: checkpoint {checkpoints} does not fit ({e}); restarting",
                file=sys.stderr,
            )
            checkpoints.discard()
            trainer, rng, _, setup_s = _setup(cell, True, clock)
    if state is not None:
        hooks.resumed(state.updates)
        for step, metrics in curve:  # the curve so far, into this run: one curve, no gap
            hooks.log(step, metrics)

    def evaluate() -> Metrics:
        with clock.part("curve_eval"):
            return cell.pretraining.curve_point(trainer.generator)

    def record(step: int, metrics: Metrics) -> None:
        curve.append((step, metrics))
        hooks.log(step, metrics)

    def checkpoint(state: LoopState) -> None:
        with clock.part("checkpoint"):
            checkpoints.save(
                {
                    "trainer": trainer.state_dict(),
                    "rng": rng.get_state(),
                    "loop": dataclasses.asdict(state),
                    "curve": curve,
                    "setup_s": setup_s,
                    "clock": clock.state(),
                }
            )

    # the method's own curve: step 0 is the pre-trained generator, seconds are its own
    settings = cell.pretraining.bench
    phase = Phase(
        cell.cfg.updates,
        cell.cfg.eval_every,
        checkpoint_every=settings.checkpoint_every,
        bound=settings.max_abs_loss,
    )
    perf = run_phase(trainer, phase, PhaseHooks(evaluate, record, hooks.tick, checkpoint), state)
    clock.seconds["setup"], clock.seconds["train"] = setup_s, perf.pop("perf/train_s")
    perf["perf/pretrain_s"] = pre_seconds
    # the last evaluation's step: cfg.updates, or fewer when the trainer stopped early
    return Trained(trainer.generator, perf, curve[-1][0] if curve else cell.cfg.updates)


def _setup(cell: CellSpec, fresh: bool, clock: Stopwatch):
    """(trainer on the cached pre-trained generator, its rng, pre-training seconds,
    construction seconds). `fresh=False` skips one-off work a checkpoint will supply."""
    pre = cell.pretraining
    with clock.part("pretrain_load"):
        gen, _, pre_seconds = pre.generator(cell.seed)
    rng = torch.Generator(device=pre.device).manual_seed(derive_seed(cell.seed, cell.spec.name))
    t0 = time.perf_counter()
    ctx = TrainContext(pre.task, pre.device, rng, cell.seed, fresh=fresh)
    trainer = cell.spec.make_trainer(cell.cfg, ctx, gen)
    return trainer, rng, pre_seconds, time.perf_counter() - t0


def _restore(trainer, rng: torch.Generator, saved: dict) -> tuple[float, list, LoopState]:
    """Load a checkpoint into a trainer built with fresh=False: (setup seconds, curve, state)."""
    state = LoopState(**saved["loop"])
    trainer.load_state_dict(saved["trainer"])
    rng.set_state(saved["rng"])
    return saved["setup_s"], saved["curve"], state


def evaluate_cell(
    cell: CellSpec, generator: LSTMGenerator, clock: Stopwatch | None = None
) -> tuple[Metrics, Metrics, Tensor]:
    """(final/* metrics, the sweep's metrics, the final samples (n, T)) of a trained cell;
    `clock` gets the parts final_* and sweep."""
    task, ev, clock = cell.pretraining.task, cell.ev, clock or Stopwatch()
    final, samples = final_metrics(generator, task, ev, clock.part)
    with clock.part("sweep"):
        sweep = sweep_metrics(generator, task, ev)
    return final, sweep, samples


def budget_metrics(cell: CellSpec) -> dict[str, float]:
    """`resources/*` of this cell's config and `resources/paper_*` of the method's paper preset,
    on the same task: what the report's budget table divides."""
    spec, task = cell.spec, cell.pretraining.task
    sizes = (task.vocab_size, task.seq_len, task.train.shape[0])
    paper = build(spec.config, spec.name, spec.presets["paper"], {})
    out = {}
    for prefix, budget in (
        ("resources/", spec.budget(cell.cfg, *sizes)),
        ("resources/paper_", spec.budget(paper, *sizes)),
    ):
        out |= {f"{prefix}{k}": float(v) for k, v in dataclasses.asdict(budget).items()}
    return out
