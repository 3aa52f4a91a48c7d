"""MLE, early-stopped: the MLE baseline selected by validation NLL.

From the shared pre-training it keeps training by MLE (a fresh Adam, `methods.mle`'s update),
measures the NLL of a validation split before its first update and every `eval_every` updates,
and keeps the weights of the best measurement (the pre-trained start among them). When
`patience` measurements in a row have not improved on it, or the `updates` run out, it puts the
best weights back and ends its phase (`train/stop`). Caccia et al. 2020 select their MLE this
way; `mle` (a fixed number of updates) is the "MLE continued" control. It can only select the
start or a later point: it cannot stop inside the pre-training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from methods.base import Budget, MethodSpec, TrainContext
from methods.config import hp
from methods.generator import LSTMGenerator
from methods.mle import MLESettings, MLETrainer
from oracle.data import validation_split


@dataclass(frozen=True)
class Config(MLESettings):
    """MLE's update fields (`methods.mle.MLESettings`) and the early stopping's."""

    updates: int = hp(
        3_120,
        "most MLE updates after pre-training (fewer when early stopping ends it)",
        source="a cap, not a tuned value: 20 epochs of the original's 9,984 training sequences",
        check="positive",
    )
    eval_every: int = hp(
        156,
        "updates between validation measurements (and learning-curve evaluations)",
        source="one epoch of the original's 9,984 sequences at batch 64: at most 20 "
        "evaluations, as every method's long preset",
        check="positive",
    )
    patience: int = hp(
        5,
        "measurements in a row without a lower validation NLL that end training",
        source="this suite's choice, as --pretrain.early-stop-patience's use in the reports",
        check="positive",
    )
    n_valid: int = hp(
        10_000,
        "oracle samples in the validation split (its own seed; rows also in train or test "
        "are dropped)",
        source="the size of the held-out set (bench.n_test), as --pretrain.n-valid",
        check="positive",
    )


PRESETS = {
    "smoke": dict(updates=20, eval_every=5, patience=2, n_valid=200),
    # quick: at most ~6 epochs more than quick's 10-epoch pre-training, a measurement per 50
    "quick": dict(updates=1_000, eval_every=50),
    "long": {},
    "paper": {},
}


class Watch:
    """The best validation NLL so far, whether training has ended, and a copy of the best
    weights (a module), checkpointable like a module."""

    def __init__(self, generator: LSTMGenerator) -> None:
        self.best_nll, self.since, self.updates, self.stopped = math.inf, 0, 0, False
        self.best = {k: v.detach().clone() for k, v in generator.state_dict().items()}

    def state_dict(self) -> dict:
        scalars = dict(best_nll=self.best_nll, since=self.since, updates=self.updates)
        return scalars | {"stopped": self.stopped, "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best_nll, self.since = float(state["best_nll"]), int(state["since"])
        self.updates, self.stopped = int(state["updates"]), bool(state["stopped"])
        self.best = {k: v.clone() for k, v in state["best"].items()}


class MLEEarlyStoppedTrainer(MLETrainer):
    """One step = one MLE update; every `eval_every` a validation measurement; after the stop,
    steps change nothing and say `train/stop` (the loop ends the phase at its next
    evaluation)."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        super().__init__(cfg, ctx, generator)
        self.valid = validation_split(ctx.task, cfg.n_valid).to(ctx.device)  # (n_valid, T)
        self.watch = Watch(generator)
        if ctx.fresh:  # the start is a candidate: mle-es is never worse on validation than it
            self.watch.best_nll = self._nll_valid()

    def _nll_valid(self) -> float:
        return -self.generator.log_prob(self.valid).sum().item() / self.valid.numel()

    def parts(self) -> dict:
        return super().parts() | {"watch": self.watch}

    def step(self) -> dict[str, float]:
        if self.watch.stopped:
            return {"train/stop": 1.0}
        out = super().step()
        w, cfg = self.watch, self.cfg
        w.updates += 1
        if w.updates % cfg.eval_every == 0 or w.updates == cfg.updates:
            nll = self._nll_valid()
            if nll < w.best_nll:
                w.best_nll, w.since = nll, 0
                w.best = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}
            else:
                w.since += 1
            out["train/nll_valid"] = nll
            if w.since >= cfg.patience or w.updates == cfg.updates:
                self.generator.load_state_dict(w.best)
                w.stopped = True
                out["train/stop"] = 1.0
                out["train/best_nll_valid"] = w.best_nll
        return out


METHOD = MethodSpec(
    name="mle-es",
    summary="maximum likelihood, early-stopped on validation NLL (the start among its candidates)",
    config=Config,
    presets=PRESETS,
    make_trainer=MLEEarlyStoppedTrainer,
    budget=lambda cfg, vocab_size, seq_len, n_train: Budget(cfg.updates, 0, 0),
)
