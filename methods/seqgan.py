"""SeqGAN: a CNN discriminator's verdict on Monte-Carlo completions, fed back by policy gradient.

After Yu et al., AAAI-17 (arXiv 1609.05473) and its code (shared/reference/seqgan-original.md).
The procedure (MLE pre-training, D pre-training, then per step: sample, reward, one
policy-gradient update, `d_steps` d-steps) is methods/pg.py's `PGTrainer`, shared with the other
policy-gradient GANs; what is SeqGAN's own is the reward: Q(Y_{1:t-1}, y_t) is the mean of
D(real) over `rollout_num` completions of the prefix Y_{1:t} drawn from G itself (t < T), and
D(Y) at t = T, used as is (no baseline: the original; methods/seqgan_baseline.py subtracts one).
D is methods/discriminator.py; the rollout is methods/rollout.py.

`seqgan-const` is the control of issue #21 of the original repository: the same procedure, D
trained as usual, but every reward replaced by a constant, so no rollout is made.

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb (sequence_gan.py, discriminator.py, rollout.py),
[PAPER] = the AAAI-17 paper; see shared/reference/seqgan-original.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import MethodSpec
from methods.config import hp
from methods.pg import ROLLOUT_PRESETS, RolloutConfig, RolloutTrainer, budget


@dataclass(frozen=True)
class Config(RolloutConfig):
    """SeqGAN's hyperparameters: methods/pg.py's policy-gradient and rollout fields, as is."""


@dataclass(frozen=True)
class ConstConfig(Config):
    constant_reward: float = hp(
        1.0,
        "the reward every token gets instead of the rollout's; 1.0 is what a fully fooled D "
        "gives. The gradient clip and Adam are both scale-free, so any positive value gives "
        "nearly the same updates (train/g_loss, a sum over the batch's tokens, scales with it: "
        "above ~80 it passes --bench.max-abs-loss at the paper's sizes)",
        source="control of [HEAD] issue #21, which used 2",
        check="positive",
    )


PRESETS = ROLLOUT_PRESETS


class SeqGANTrainer(RolloutTrainer):
    """One step = rollout rewards for a fresh batch, one policy-gradient update, d-steps."""

    method = "seqgan"  # the CLI prefix its config errors name

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        return self.rollout_rewards(x)


class ConstRewardTrainer(SeqGANTrainer):
    """seqgan-const: every reward is `constant_reward`; no rollout, no D call for rewards."""

    method = "seqgan-const"

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        return torch.full(x.shape, self.cfg.constant_reward, device=x.device), {}


METHOD = MethodSpec(
    name="seqgan",
    summary="SeqGAN: CNN discriminator, Monte-Carlo rollout rewards, policy gradient",
    config=Config,
    presets=PRESETS,
    make_trainer=SeqGANTrainer,
    budget=budget,
)

CONST_METHOD = MethodSpec(
    name="seqgan-const",
    summary="SeqGAN with every reward a constant (control, issue #21): no rollout, D as usual",
    config=ConstConfig,
    presets=PRESETS,
    make_trainer=ConstRewardTrainer,
    budget=budget,
)
