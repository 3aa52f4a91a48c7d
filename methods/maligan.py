"""MaliGAN-basic: the discriminator's odds D/(1-D) as self-normalised importance weights.

After Che et al. 2017 (arXiv 1702.07983), Algorithm 1: each sampled sequence Y_b gets the
advantage w_b - 1/B, w = softmax over the batch of logit D (the normalised odds D/(1-D)), given
to every one of its tokens; the update and the d-steps are methods/pg.py's `PGTrainer`, with no
rollout. `train/ess` and `train/max_weight` watch its failure mode, weight degeneracy. Why the
weights estimate the MLE gradient, what is not built and where the public ports differ:
docs/methods.md, "MaliGAN-basic".

`maligan-oracle-d` takes the weights from the exact D* (methods/oracle_discriminator.py): its
logit is log P/G, so the weights are exactly P/G normalised over the batch; no D is trained.

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb (every inherited field's source: this method
runs SeqGAN's schedule, see PRESETS), [PAPER] = the MaliGAN paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import MethodSpec
from methods.oracle_discriminator import OracleTrainer, without_discriminator
from methods.oracle_discriminator import budget as oracle_budget
from methods.pg import PRESETS as PG_PRESETS
from methods.pg import PGConfig, PGTrainer, budget
from methods.policy import PolicyConfig


@dataclass(frozen=True)
class Config(PGConfig):
    """MaliGAN-basic's hyperparameters: methods/pg.py's policy-gradient fields, as is (no
    rollout fields: the method makes no rollouts)."""


# The MaliGAN paper reports no result on the SeqGAN oracle (pg-family.md §1.2, §5), so the suite
# gives MaliGAN-basic SeqGAN's budgets and discriminator, making it comparable update for update:
# paper = SeqGAN's original code ([HEAD]: 200 updates of batch 64, 5 d-steps x 3 epochs each, the
# paper's 12-width CNN); quick and smoke are the suite's reductions of it, as for SeqGAN. Not
# followed: TextGAN-PyTorch's MaliGAN oracle schedule (ADV_g_step 50 generator steps per
# adversarial epoch, 200 epochs, ADV_d_step 1 x ADV_d_epoch 3, dis_embed_dim 64,
# run/run_maligan.py) nor Texygen's (100 epochs of 50 generator steps and 15 short D calls).
PRESETS = PG_PRESETS


@dataclass(frozen=True)
class OracleConfig(PolicyConfig):
    """The generator's fields alone (methods/policy.py): D* is exact, no rollout."""


ORACLE_PRESETS = without_discriminator(PRESETS, OracleConfig)


def mali_advantages(logit_d: Tensor) -> tuple[Tensor, Tensor]:
    """MaliGAN-basic's per-sequence advantages from the discriminator's logits.

    logit_d (..., B): logit D(Y_b) = log(D / (1 - D)) = log r_D of each of the B sequences of a
    batch (leading dimensions, if any, are independent batches). Returns (advantages, weights),
    both (..., B): weights w_b = r_D(Y_b) / sum_j r_D(Y_j) = softmax_b(logit_d), the
    self-normalised importance weights (non-negative, summing to 1 over the batch); advantages
    A_b = w_b - 1/B (summing to 0: the baseline is the mean weight). Equal logits give weights
    exactly 1/B and advantages exactly 0.
    """
    weights = torch.softmax(logit_d, dim=-1)  # (..., B)
    return weights - 1.0 / logit_d.shape[-1], weights


def effective_sample_size(weights: Tensor) -> Tensor:
    """(...,) 1 / sum_b w_b^2 of normalised weights (..., B): B when equal, 1 when one-hot."""
    return 1.0 / weights.square().sum(dim=-1)


class MaliRewards:
    """MaliGAN-basic's advantages from the judge's sequence logits, whichever D gives them."""

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        logit_d = self.sequence_logit(x)  # (B,): log D/(1-D), no gradient
        advantages, weights = mali_advantages(logit_d)  # (B,), (B,)
        q = advantages[:, None].expand(-1, x.shape[1])  # (B, T): every token gets its sequence's
        scalars = {
            "train/ess": effective_sample_size(weights).item(),
            "train/max_weight": weights.max().item(),
            "train/d_real": torch.sigmoid(logit_d).mean().item(),
        }
        return q, scalars


class MaliGANTrainer(MaliRewards, PGTrainer):
    """One step = Mali weights of a fresh batch, one policy-gradient update, d-steps."""

    method = "maligan"  # the CLI prefix its config errors name


class OracleDTrainer(MaliRewards, OracleTrainer):
    """maligan-oracle-d: the weights P/G normalised, exactly; no D is trained."""

    method = "maligan-oracle-d"


METHOD = MethodSpec(
    name="maligan",
    summary="MaliGAN-basic: normalised D/(1-D) importance weights of whole samples, policy "
    "gradient, no rollout (Che 2017)",
    config=Config,
    presets=PRESETS,
    make_trainer=MaliGANTrainer,
    budget=budget,
)

ORACLE_METHOD = MethodSpec(
    name="maligan-oracle-d",
    summary="MaliGAN-basic with the exact optimal discriminator: weights P/G normalised over the "
    "batch; no D trained",
    config=OracleConfig,
    presets=ORACLE_PRESETS,
    make_trainer=OracleDTrainer,
    budget=oracle_budget,
)
