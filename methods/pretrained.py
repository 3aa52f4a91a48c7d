"""The pre-trained generator itself: 0 updates after the shared MLE pre-training.

Every method's seed s starts from this generator, so it is the row that separates "the method
improved on its start" from "the method's extra updates moved it". Its cell only evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass

from methods.base import Budget, Checkpointable, MethodSpec, TrainContext
from methods.config import hp
from methods.generator import LSTMGenerator


@dataclass(frozen=True)
class Config:
    updates: int = hp(
        0,
        "generator updates after pre-training: none, by definition of this row",
        source="this suite: the start every method shares",
        check="nonneg",
    )
    eval_every: int = hp(
        1,
        "updates between evaluations (unused: there are none)",
        source="any positive value",
        check="positive",
    )


PRESETS = {"smoke": {}, "quick": {}, "long": {}, "paper": {}}


class PretrainedTrainer(Checkpointable):
    """Holds the pre-trained generator; a step would be an update, and this row makes none."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator = cfg, generator

    def parts(self) -> dict:
        return {"generator": self.generator}

    def step(self) -> dict[str, float]:
        raise RuntimeError("the pre-trained row makes no updates (--pretrained.updates 0)")


METHOD = MethodSpec(
    name="pretrained",
    summary="the shared MLE pre-training itself, 0 updates: every method's start",
    config=Config,
    presets=PRESETS,
    make_trainer=PretrainedTrainer,
    budget=lambda cfg, vocab_size, seq_len, n_train: Budget(0, 0, 0),
)
