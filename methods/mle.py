"""MLE: teacher-forced maximum likelihood, the baseline every GAN must beat.

Its update is also the shared pre-training of every method (`bench/train/pretrain.py`, with its
own config, `--pretrain.*`): the benchmark caches the pre-trained generator by that config, the task
and the replicate seed, so every method of one seed starts from the same weights. After
pre-training, `mle` itself keeps training by MLE (a fresh Adam, this module's Config) for
`updates` more generator updates: the "MLE continued" control (paper preset: 200, SeqGAN's
count of adversarial updates; each method's PRESETS set its own counts, so compare at equal
training seconds or updates with the learning curves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.base import Budget, Checkpointable, MethodSpec, Minibatches, TrainContext
from methods.config import hp
from methods.generator import LSTMGenerator

# Source key: [HEAD] = LantaoYu/SeqGAN sequence_gan.py/generator.py at e2b52fb,
# [PAPER-ERA] = the same repo at 149b789; see shared/reference/seqgan-original.md.


@dataclass(frozen=True)
class MLESettings:
    """What an MLE update needs: the fields this module's Config and the pre-training's config
    (`--pretrain.*`) both have, with the original's values."""

    lr: float = hp(
        1e-2,
        "Adam learning rate (a fresh Adam for each training phase)",
        source="[HEAD] generator.py; 1e-3 in [PAPER-ERA]",
        check="positive",
    )
    batch_size: int = hp(
        64,
        "minibatch size (sequences)",
        source="[HEAD] BATCH_SIZE",
        check="positive",
        batch_of_train=True,
    )
    clip: float = hp(5.0, "global gradient-norm clip", source="[HEAD] grad_clip", check="positive")


@dataclass(frozen=True)
class Config(MLESettings):
    """The continued MLE training after the shared pre-training, with a fresh Adam: the update
    fields of `MLESettings` and its own length (`bench/train/pretrain.py` has the pre-training's
    own config: `--pretrain.*`)."""

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
    "smoke": dict(updates=10, eval_every=5),
    # quick: sized for 2 CPU cores (README, "Presets and timings")
    "quick": dict(updates=100, eval_every=10),
    # long: the paper preset's 200 continued updates (as many as SeqGAN's adversarial iterations)
    "long": dict(eval_every=10),
    "paper": {},
}


class MLETrainer(Checkpointable):
    """One step = one Adam update on a minibatch of oracle training data."""

    def __init__(self, cfg: MLESettings, ctx: TrainContext, generator: LSTMGenerator) -> None:
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


def updates_per_epoch(cfg: MLESettings, n_train: int) -> int:
    return n_train // cfg.batch_size


METHOD = MethodSpec(
    name="mle",
    summary="maximum likelihood (teacher forcing): the baseline",
    config=Config,
    presets=PRESETS,
    make_trainer=MLETrainer,
    budget=lambda cfg, vocab_size, seq_len, n_train: Budget(cfg.updates, 0, 0),
)
