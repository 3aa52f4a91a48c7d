"""The training loop: evaluation points, checkpoint points, and continuing from a LoopState."""

import copy
import dataclasses
import math

import pytest

from bench.train.loop import Diverged, LoopState, Phase, PhaseHooks, check_finite, run_phase


class CountingTrainer:
    """step() returns the update number as its loss: a curve whose values are checkable."""

    def __init__(self) -> None:
        self.n = 0

    def step(self) -> dict[str, float]:
        self.n += 1
        return {"train/g_loss": float(self.n), "perf/x_ms": 1.0}


def _run(phase, state=None, trainer=None):
    trainer = trainer or CountingTrainer()
    logged, saved = [], []
    hooks = PhaseHooks(
        evaluate=lambda: {"eval/n": float(trainer.n)},
        log=lambda step, m: logged.append((step, m)),
        checkpoint=lambda s: saved.append(copy.deepcopy(s)),
    )
    perf = run_phase(trainer, dataclasses.replace(phase, bound=1e6), hooks, state=state)
    return logged, saved, perf


def test_evaluates_every_eval_every_and_at_the_end():
    logged, saved, _ = _run(Phase(updates=7, eval_every=3))
    assert [step for step, _ in logged] == [0, 3, 6, 7]
    assert logged[2][1]["train/g_loss"] == (4 + 5 + 6) / 3  # the interval's mean
    assert saved == []  # checkpoint_every 0: never


def test_checkpoints_at_the_first_evaluation_after_each_interval_never_at_the_end():
    _, saved, _ = _run(Phase(updates=12, eval_every=3, checkpoint_every=4))
    assert [s.updates for s in saved] == [6]  # 6 - 0 >= 4; 9 - 6 < 4; 12 is the end
    _, saved, _ = _run(Phase(updates=13, eval_every=3, checkpoint_every=4))
    assert [s.updates for s in saved] == [6, 12]


def test_continuing_from_a_saved_state_gives_the_uninterrupted_curve_and_means():
    phase = Phase(updates=10, eval_every=2, step_offset=100, checkpoint_every=4)
    whole, saved, whole_perf = _run(phase)
    state = saved[0]
    assert state.updates == 4 and len(state.perf_rows) == 4
    trainer = CountingTrainer()
    trainer.n = state.updates  # what the trainer's load_state_dict restores
    rest, _, perf = _run(phase, state=state, trainer=trainer)
    assert [s for s, _ in whole if s > 104] == [s for s, _ in rest]
    strip = [{k: v for k, v in m.items() if not k.startswith("perf/")} for _, m in rest]
    assert strip == [
        {k: v for k, v in m.items() if not k.startswith("perf/")} for s, m in whole if s > 104
    ]
    assert perf["perf/x_ms_mean"] == whole_perf["perf/x_ms_mean"] == 1.0
    assert perf["perf/train_s"] >= state.train_s


def test_a_non_finite_scalar_raises_diverged_with_its_step():
    class Bad(CountingTrainer):
        def step(self):
            out = super().step()
            return out | {"train/g_loss": math.nan} if self.n == 3 else out

    with pytest.raises(Diverged) as info:
        _run(Phase(updates=5, eval_every=5, step_offset=10), trainer=Bad())
    assert info.value.step == 13 and info.value.key == "train/g_loss"


def test_a_fresh_state_starts_at_the_phase_offset():
    # a phase after pre-training: no step-0 evaluation, steps continue from step_offset and the
    # seconds from the state's train_s (a state of its own starts at seconds_offset)
    for phase, state in (
        (Phase(updates=2, eval_every=1, step_offset=5), LoopState(train_s=2.5)),
        (Phase(updates=2, eval_every=1, step_offset=5, seconds_offset=2.5), None),
    ):
        logged, _, perf = _run(phase, state=state)
        assert [step for step, _ in logged] == [6, 7]
        assert [m["train/g_loss"] for _, m in logged] == [1.0, 2.0]
        (_, first), (_, second) = logged
        assert first["perf/train_s"] == 2.5 + first["perf/update_ms"] / 1000
        assert second["perf/train_s"] == first["perf/train_s"] + second["perf/update_ms"] / 1000
        assert perf["perf/train_s"] == second["perf/train_s"]


class FastTrainer(CountingTrainer):
    def step(self) -> dict[str, float]:
        return super().step() | {"perf/completions_per_s": 2e6}  # beyond the 1e6 bound


def test_the_bound_applies_to_training_scalars_not_to_timings():
    logged, _, _ = _run(Phase(updates=4, eval_every=2), trainer=FastTrainer())
    assert [step for step, _ in logged] == [0, 2, 4]  # a fast device is not a divergence
    with pytest.raises(Diverged, match="train/g_loss"):
        check_finite({"train/g_loss": -2e6, "perf/x_ms": 1.0}, 7, 1e6)
    with pytest.raises(Diverged, match="perf/x_ms"):
        check_finite({"perf/x_ms": math.nan}, 7, 1e6)
