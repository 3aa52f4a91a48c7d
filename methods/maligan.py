"""MaliGAN-basic: the discriminator's odds D/(1-D) as self-normalised importance weights.

After Che et al. 2017, "Maximum-Likelihood Augmented Discrete Generative Adversarial Networks"
(arXiv 1702.07983), Algorithm 1 ("MaliGAN-basic"); notes in shared/reference/pg-family.md §1.
The optimal discriminator for the current generator p_theta is D*(x) = p_d(x) / (p_d(x) +
p_theta(x)), so r_D(x) = D(x) / (1 - D(x)) = p_d(x) / p_theta(x) exactly when D = D*. Weighting
the generator's own samples Y_1..Y_B by normalised r_D therefore estimates the maximum-likelihood
gradient E_{p_d}[grad log p_theta] (the paper's Sec. 3.2 analysis, [PAPER], unverified here; the
oracle-discriminator test in tests/test_maligan.py checks it with the exact D* on a small
problem: the mean update tends to the MLE gradient as B grows, with the O(1/B) bias of
self-normalisation):

    grad = sum_b (w_b - 1/B) grad log p_theta(Y_b),   w_b = r_D(Y_b) / sum_j r_D(Y_j)

with the baseline 1/B (the mean weight, as both public ports; the advantages sum to zero). Since
log r_D = logit D, w = softmax over the batch of logit D, and for the benchmark's 2-class CNN
logit D = out[1] - out[0]: computed that way it never divides by 1 - D, which rounds to zero for a
confident D (`mali_advantages`). The advantage of a sequence is given to each of its tokens, and
the update and the d-steps are methods/pg.py's `PGTrainer` (loss = -sum_{b,t} A_b log G, Adam,
clipping; D trained as SeqGAN's, with dropout; it scores the samples with dropout off).

MaliGAN-basic makes no rollouts, so its Config is `PGConfig`, not `RolloutConfig`, and its
rollout cost is none: one D forward pass on the batch per update. Not built: "MaliGAN-full", the
paper's variance reduction (Monte-Carlo tree search for per-token rewards; mixed MLE-Mali training
on real prefixes with generated suffixes); pg-family.md §1.2 lists what is unverified about it.

Its failure mode is weight degeneracy: a sharp D puts almost all the weight on one sample, and
the update then pushes that one sequence up and every other down. `train/ess` = 1 / sum_b w_b^2
(B for equal weights, 1 for one sample taking all) and `train/max_weight` are logged every step
for that. `train/reward` (the mean advantage) is 0 up to rounding by construction; the mean
D(real) of the batch is `train/d_real`.

Where the public ports differ (pg-family.md §1.3-1.4): Texygen's reward normalises D itself, not
D/(1-D); TextGAN-PyTorch averages 16 passes of the SAME sequences through D with dropout on (its
"rollout_num" loop is not Monte Carlo), here one pass with dropout off.

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb (every inherited field's source: this method
runs SeqGAN's schedule, see PRESETS), [PAPER] = the MaliGAN paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import MethodSpec
from methods.pg import PRESETS as PG_PRESETS
from methods.pg import PGConfig, PGTrainer, budget


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


class MaliGANTrainer(PGTrainer):
    """One step = Mali weights of a fresh batch, one policy-gradient update, d-steps."""

    method = "maligan"  # the CLI prefix its config errors name

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        with torch.no_grad():  # the weights are constants of the generator's loss
            logits = self.discriminator(x)  # (B, 2), dropout off
            logit_d = logits[:, 1] - logits[:, 0]  # (B,): log D/(1-D) of the 2-class softmax
            advantages, weights = mali_advantages(logit_d)  # (B,), (B,)
        q = advantages[:, None].expand(-1, x.shape[1])  # (B, T): every token gets its sequence's
        scalars = {
            "train/ess": effective_sample_size(weights).item(),
            "train/max_weight": weights.max().item(),
            "train/d_real": torch.sigmoid(logit_d).mean().item(),
        }
        return q, scalars


METHOD = MethodSpec(
    name="maligan",
    summary="MaliGAN-basic: normalised D/(1-D) importance weights of whole samples, policy "
    "gradient, no rollout (Che 2017)",
    config=Config,
    presets=PRESETS,
    make_trainer=MaliGANTrainer,
    budget=budget,
)
