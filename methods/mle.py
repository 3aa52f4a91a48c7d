"""MLE: teacher-forced maximum likelihood, the baseline every GAN must beat.

Its pre-training phase is also the shared starting point of every adversarial method: the
benchmark caches the pre-trained generator by this config, the task and the replicate seed
(`bench/pretrain.py`), so `mle`, `seqgan`, `wgan-gp` and `gumbel` of one seed start from the same
weights. After pre-training, `mle` itself keeps training by MLE for `updates` more generator
updates: the "MLE continued" control (paper preset: 200, SeqGAN's count of adversarial updates;
each method's PRESETS set its own counts, so compare at equal training seconds or updates with
the learning curves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import Checkpointable, MethodSpec, Minibatches, TrainContext
from methods.config import hp
from methods.generator import LSTMGenerator

# Source key: [HEAD] = LantaoYu/SeqGAN sequence_gan.py/generator.py at e2b52fb,
# [PAPER-ERA] = the same repo at 149b789; see shared/reference/seqgan-original.md.


@dataclass(frozen=True)
class Config:
    lr: float = hp(
        1e-2,
        "Adam learning rate",
        source="[HEAD] generator.py; 1e-3 in [PAPER-ERA]",
        check="positive",
    )
    batch_size: int = hp(
        64, "minibatch size (sequences)", source="[HEAD] BATCH_SIZE", check="positive"
    )
    clip: float = hp(5.0, "global gradient-norm clip", source="[HEAD] grad_clip", check="positive")
    init_std: float = hp(
        0.1,
        "std of the N(0, std^2) initialisation of every generator parameter",
        source="[HEAD] init_matrix",
        check="positive",
    )
    pretrain_epochs: int = hp(
        120,
        "epochs of MLE pre-training over the training set",
        source="[HEAD] PRE_EPOCH_NUM; 240 in [PAPER-ERA]",
        check="positive",
    )
    pretrain_eval_every: int = hp(
        5,
        "pre-training epochs between learning-curve evaluations",
        source="[HEAD] evaluates every 5 epochs",
        check="positive",
    )
    updates: int = hp(
        200,
        "MLE updates after pre-training (the 'MLE continued' control)",
        source="matches SeqGAN's TOTAL_BATCH=200 [HEAD]",
        check="nonneg",
    )
    eval_every: int = hp(
        5,
        "updates between evaluations after pre-training",
        source="[HEAD] every 5 adversarial iterations",
        check="positive",
    )


PRESETS = {
    # smoke: a few hundred updates on a small training set, for tests (seconds)
    "smoke": dict(pretrain_epochs=2, pretrain_eval_every=1, updates=10, eval_every=5),
    # quick: tuned on 2 CPU cores so the whole suite fits 20 minutes (see README "Presets")
    # (measured: with lr 1e-2, NLL-test bottoms out near epoch 2-4 and then rises while
    # NLL-oracle keeps falling: the paper's 120-epoch recipe overfits 10,000 sequences; see README)
    "quick": dict(pretrain_epochs=10, pretrain_eval_every=1, updates=100, eval_every=10),
    "paper": {},
}


class MLETrainer(Checkpointable):
    """One step = one Adam update on a minibatch of oracle training data."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator = cfg, generator
        self.opt = torch.optim.Adam(generator.parameters(), lr=cfg.lr)
        self.batches = Minibatches(ctx.task.train, cfg.batch_size, ctx.rng, ctx.device)

    def parts(self) -> dict:
        return {"generator": self.generator, "opt": self.opt, "batches": self.batches}

    def step(self) -> dict[str, float]:
        x = next(self.batches)  # (B, T)
        loss = -self.generator.token_log_probs(x).mean()  # per-token NLL, as the original
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.clip)
        self.opt.step()
        return {"train/g_loss": loss.item(), "train/grad_norm": grad_norm.item()}


def updates_per_epoch(cfg: Config, n_train: int) -> int:
    return n_train // cfg.batch_size


METHOD = MethodSpec(
    name="mle",
    summary="maximum likelihood (teacher forcing): the baseline",
    config=Config,
    presets=PRESETS,
    make_trainer=MLETrainer,
)
