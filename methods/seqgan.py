"""SeqGAN: a CNN discriminator's verdict on Monte-Carlo completions, fed back by policy gradient.

After Yu et al., AAAI-17 (arXiv 1609.05473) and its code (shared/reference/seqgan-original.md).
The procedure (MLE pre-training, D pre-training, then per step: sample, reward, one
policy-gradient update, `d_steps` d-steps) is methods/pg.py's `PGTrainer`, shared with the other
policy-gradient GANs; what is SeqGAN's own is the reward: Q(Y_{1:t-1}, y_t) is the mean of
D(real) over `rollout_num` completions of the prefix Y_{1:t} drawn from G itself (t < T), and
D(Y) at t = T, used as is (no baseline: the original; methods/seqgan_baseline.py subtracts one).
D is methods/discriminator.py; the rollout is methods/rollout.py.

Its variants, each a row of its own:
- `seqgan-const`, the control of issue #21 of the original repository: the same procedure, D
  trained as usual, but every reward replaced by a constant, so no rollout is made;
- `seqgan-shuffled`, the real rollout rewards permuted across the batch at each position: the
  rewards' distribution and all-positive drift kept, the link between a sequence and its own
  reward cut (with the constant control it brackets what "the discriminator's signal" can mean);
- `seqgan-d10`, ten times the d-steps after each update and in D's pre-training (the
  discriminator-strength axis: `stronger_discriminator` in methods/pg.py);
- `seqgan-oracle-d`, the rollout scored by the exact D* (methods/oracle_discriminator.py): no
  discriminator trained.

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb (sequence_gan.py, discriminator.py, rollout.py),
[PAPER] = the AAAI-17 paper; see shared/reference/seqgan-original.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import MethodSpec
from methods.config import hp
from methods.oracle_discriminator import OracleRolloutTrainer, without_discriminator
from methods.oracle_discriminator import budget as oracle_budget
from methods.pg import (
    ROLLOUT_PRESETS,
    RolloutConfig,
    RolloutTrainer,
    budget,
    stronger_discriminator,
)
from methods.policy import RolloutFields


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


@dataclass(frozen=True)
class OracleConfig(RolloutFields):
    """SeqGAN's generator and rollout fields; no discriminator fields: D* is exact."""


PRESETS = ROLLOUT_PRESETS
D10_PRESETS = stronger_discriminator(PRESETS, 10)
ORACLE_PRESETS = without_discriminator(PRESETS, OracleConfig)


def shuffle_positions(q: Tensor, rng: torch.Generator) -> Tensor:
    """q (B, T) with each column permuted by its own uniformly random permutation of the batch:
    every position keeps its multiset of values, no value stays tied to its own sequence."""
    order = torch.rand(q.shape, generator=rng, device=rng.device).argsort(dim=0)  # (B, T)
    return q.gather(0, order.to(q.device))


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


class ShuffledRewardTrainer(SeqGANTrainer):
    """seqgan-shuffled: the rollout's Q, each position's rewards permuted across the batch."""

    method = "seqgan-shuffled"

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        q, perf = self.rollout_rewards(x)  # (B, T)
        return shuffle_positions(q, self.rng), perf


class D10Trainer(SeqGANTrainer):
    """seqgan-d10: SeqGAN's trainer; its presets hold the 10x d-steps."""

    method = "seqgan-d10"


class OracleDTrainer(OracleRolloutTrainer):
    """seqgan-oracle-d: the rollout's completions scored by D*; no D is trained."""

    method = "seqgan-oracle-d"

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        return self.rollout_rewards(x)


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

SHUFFLED_METHOD = MethodSpec(
    name="seqgan-shuffled",
    summary="SeqGAN with its rollout rewards permuted across the batch at each position "
    "(control: the reward's distribution without its link to the sequence)",
    config=Config,
    presets=PRESETS,
    make_trainer=ShuffledRewardTrainer,
    budget=budget,
)

D10_METHOD = MethodSpec(
    name="seqgan-d10",
    summary="SeqGAN with 10x the discriminator's d-steps, in pre-training and after each update",
    config=Config,
    presets=D10_PRESETS,
    make_trainer=D10Trainer,
    budget=budget,
)

ORACLE_METHOD = MethodSpec(
    name="seqgan-oracle-d",
    summary="SeqGAN with the exact optimal discriminator D* = P/(P+G) scoring its rollouts; no D "
    "trained",
    config=OracleConfig,
    presets=ORACLE_PRESETS,
    make_trainer=OracleDTrainer,
    budget=oracle_budget,
)
