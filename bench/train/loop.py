"""The one training loop every method runs in: updates, timing, evaluation, divergence checks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from methods.base import Trainer

Metrics = dict[str, float]


class Diverged(RuntimeError):
    """A training scalar became non-finite or exceeded the configured bound."""

    def __init__(self, step: int, key: str, value: float) -> None:
        super().__init__(f"diverged at step {step}: {key} = {value}")
        self.step, self.key, self.value = step, key, value


@dataclass
class Phase:
    """One stretch of generator updates with a shared x-axis (generator updates so far)."""

    updates: int
    eval_every: int
    step_offset: int = 0  # updates made before this phase (pre-training), so curves continue
    seconds_offset: float = 0.0  # training seconds before this phase, for wall-clock curves
    checkpoint_every: int = 0  # updates between checkpoints, taken at the next evaluation; 0: none
    bound: float = math.inf  # a train/* scalar beyond this magnitude is a divergence


@dataclass
class LoopState:
    """Where a phase stands at an evaluation point: enough to continue it exactly."""

    updates: int = 0  # updates of this phase made
    train_s: float = 0.0  # training seconds so far, the phase's seconds_offset included
    perf_rows: list[Metrics] = field(default_factory=list)  # per-update perf scalars so far


def check_finite(scalars: Metrics, step: int, bound: float) -> None:
    """Diverged when any scalar is not finite, or a training scalar (`train/*`) exceeds `bound`
    in magnitude; timings and throughputs (`perf/*`) are only required to be finite, since a
    fast device legitimately scores 1e5+ completions per second."""
    for key, value in scalars.items():
        limit = bound if key.startswith("train/") else math.inf
        if not math.isfinite(value) or abs(value) > limit:
            raise Diverged(step, key, value)


@dataclass
class PhaseHooks:
    """What a phase calls: `evaluate` at each evaluation point, `log` with its metrics, `tick`
    after each update, `checkpoint` with the state to save, `stop` to end the phase early."""

    evaluate: Callable[[], Metrics]
    log: Callable[[int, Metrics], None]
    tick: Callable[[Metrics], None] = lambda scalars: None
    checkpoint: Callable[[LoopState], None] = lambda state: None
    stop: Callable[[int, Metrics], bool] = lambda step, metrics: False


def run_phase(
    trainer: Trainer, phase: Phase, hooks: PhaseHooks, state: LoopState | None = None
) -> Metrics:
    """Run `phase.updates` trainer steps; evaluate every `eval_every` and at the end.

    Train scalars are averaged over each evaluation interval and logged with `perf/update_ms`
    (wall time of the updates alone, evaluation excluded). Returns the phase means of the
    `perf/*` scalars, `perf/update_ms` included, as `perf/<name>_mean`.

    A `state` saved by `hooks.checkpoint` (called after an evaluation once `checkpoint_every`
    updates have passed since the last one) continues the phase where it stood, trainer
    restored. `hooks.stop(step, metrics)`, asked after every evaluation but step 0's, ends the
    phase early when it returns True (early stopping); so does a trainer whose steps since the
    last evaluation returned `train/stop` > 0.
    """
    state = state or LoopState(train_s=phase.seconds_offset)
    if state.updates == 0 and phase.step_offset == 0:
        hooks.log(0, hooks.evaluate() | {"perf/train_s": 0.0})
    window, window_ms, saved_at = [], 0.0, state.updates
    for u in range(state.updates + 1, phase.updates + 1):
        step = phase.step_offset + u
        t0 = time.perf_counter()
        scalars = trainer.step()
        dt = (time.perf_counter() - t0) * 1000
        check_finite(scalars, step, phase.bound)
        window_ms, state.train_s = window_ms + dt, state.train_s + dt / 1000
        window.append(scalars)
        state.perf_rows.append(
            {k: v for k, v in scalars.items() if k.startswith("perf/")} | {"perf/update_ms": dt}
        )
        hooks.tick(scalars)
        if u % phase.eval_every == 0 or u == phase.updates:
            metrics = _mean(window) | {
                "perf/update_ms": window_ms / len(window),
                "perf/train_s": state.train_s,
            }
            metrics |= hooks.evaluate()
            check_finite(metrics, step, math.inf)
            hooks.log(step, metrics)
            window, window_ms, state.updates = [], 0.0, u
            if hooks.stop(step, metrics) or metrics.get("train/stop", 0.0) > 0:
                break
            due = phase.checkpoint_every and u - saved_at >= phase.checkpoint_every
            if due and u < phase.updates:
                hooks.checkpoint(state)
                saved_at = u
    means = {f"{k}_mean": v for k, v in _mean(state.perf_rows).items()}
    return means | {"perf/train_s": state.train_s}


def _mean(rows: list[Metrics]) -> Metrics:
    keys = {k for row in rows for k in row}
    return {k: sum(r[k] for r in rows if k in r) / sum(k in r for r in rows) for k in keys}
