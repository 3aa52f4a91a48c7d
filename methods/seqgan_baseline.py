"""SeqGAN with an unbiased baseline: the rollout's Q minus an estimate that ignores the token.

The procedure is SeqGAN's (methods/pg.py's `RolloutTrainer`: the same rollout, D, d-steps and
presets); only the per-token weight of the policy-gradient update changes, from Q to an
advantage A = Q - c. A baseline c_{b,t} keeps the estimator unbiased when it is independent of
the token y_t^b given the prefix Y^b_{1:t-1} (shared/reference/pg-family.md §3). Two are
offered, both free (no extra rollouts):

- "loo": a per-position leave-one-out mean over the batch, A_{b,t} = Q_{b,t} - mean_{b' != b}
  Q_{b',t}. The other samples and their rollouts are independent of sample b. After Kool, van
  Hoof and Welling 2019, "Buy 4 REINFORCE Samples, Get a Baseline for Free!" (pg-family.md §3.1),
  taken per position.
- "previous": the rollouts SeqGAN already drew at position t-1 start from Y_{1:t-1} and draw
  their own token at t, so Q_{b,t-1} is a Monte-Carlo estimate of V(Y_{1:t-1}) independent of
  y_t: A_{b,t} = Q_{b,t} - Q_{b,t-1} for t >= 2, and A_{b,1} = Q_{b,1} - V0 with V0 the LOO batch
  mean of D(Y^{b'}) (pg-family.md §3.2). A state-dependent baseline.

Not offered, because they are not valid baselines:
- the mean of a prefix's own N completions: it IS Q_{b,t} (every completion contains y_t), so
  the advantage is exactly zero and so is the gradient (pg-family.md §3.2);
- GRPO's group normalisation (Q - mean) / std (Shao et al. 2024, per position: pg-family.md
  §3.3): the division by a std that depends on the sample itself biases the gradient's
  direction, not only its scale (Dr. GRPO, Liu et al. 2025, drops it).
tests/test_seqgan_baseline.py shows by exact enumeration that both fail the unbiasedness test
that "none", "loo" and "previous" pass.

What to expect (pg-family.md §3.5, an inference): SeqGAN's Q lies in (0, 1), so without a
baseline every sampled token is pushed up, a sharpening drift that by itself lowers NLL-oracle
(issue #21 of the original: a constant reward does it). A baseline removes that drift, so
NLL-oracle may look WORSE than no-baseline SeqGAN although the gradient estimate is better;
read NLL-gen and train/entropy next to it. `train/q_mean` logs the raw Q mean, comparable with
SeqGAN's `train/reward`; here `train/reward` is the mean advantage, 0 up to rounding with either
baseline (LOO advantages sum to 0 over the batch at each position; a sample's "previous"
advantages telescope to D(Y^b) - V0_b, whose batch sum is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import MethodSpec
from methods.config import ConfigError, hp
from methods.pg import ROLLOUT_PRESETS, RolloutConfig, RolloutTrainer, budget

Advantage = Callable[[Tensor], Tensor]  # Q (..., B, T) -> A (..., B, T)


def leave_one_out_mean(values: Tensor) -> Tensor:
    """For values (..., B, n): at [.., b, :], the mean over the other rows b' != b of dim -2.
    Needs B >= 2 (one sample has no others)."""
    batch = values.shape[-2]
    if batch < 2:
        raise ValueError(f"a leave-one-out mean needs at least 2 samples, got {batch}")
    return (values.sum(dim=-2, keepdim=True) - values) / (batch - 1)  # (..., B, n)


def loo_advantage(q: Tensor) -> Tensor:
    """Q (B, T) -> A (B, T): A_{b,t} = Q_{b,t} - mean_{b' != b} Q_{b',t}.

    A per-position leave-one-out baseline over the batch: a state-independent constant per t
    that is independent of sample b. Leading dimensions (..., B, T) are independent groups
    (the test applies it to many batches at once). Equals B/(B-1) * (Q - mean_b Q)."""
    return q - leave_one_out_mean(q)  # (..., B, T)


def previous_advantage(q: Tensor) -> Tensor:
    """Q (B, T) -> A (B, T): A_{b,t} = Q_{b,t} - Q_{b,t-1} for t >= 2, A_{b,1} = Q_{b,1} - V0_b.

    Q_{b,t-1} averages D over completions of Y^b_{1:t-1} that drew their own token t: an MC
    estimate of V(Y^b_{1:t-1}) independent of y_t^b. V0_b, the value of the empty prefix, is the
    LOO batch mean of D(Y^{b'}) = Q_{b',T}. The advantages of a sample telescope:
    sum_t A_{b,t} = D(Y^b) - V0_b. Leading dimensions (..., B, T) are independent groups."""
    v0 = leave_one_out_mean(q[..., -1:])  # (..., B, 1)
    return q - torch.cat([v0, q[..., :-1]], dim=-1)  # (..., B, T)


ADVANTAGES: dict[str, Advantage] = {"loo": loo_advantage, "previous": previous_advantage}


@dataclass(frozen=True)
class Config(RolloutConfig):
    """SeqGAN's fields (methods/pg.py) and the baseline subtracted from its Q."""

    baseline: str = hp(
        "previous",
        "baseline subtracted from the rollout's Q: 'previous' (Q of the previous position, an "
        "MC estimate of V(Y_{1:t-1})) or 'loo' (per-position leave-one-out batch mean); both "
        "unbiased",
        source="the lower per-batch gradient MSE in tests/test_seqgan_baseline.py's exact "
        "enumeration (V=3, T=3, B=8, N=4, 50k batches, |grad J|^2 = 7.9e-3): previous 5.5e-3, "
        "loo 1.25e-2, no baseline 1.15e-1",
        choices=tuple(ADVANTAGES),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 2:  # both baselines take a leave-one-out mean over the batch
            raise ConfigError(
                f"batch-size={self.batch_size} is too small for a baseline: the leave-one-out "
                "mean over the batch needs at least 2 samples"
            )


PRESETS = ROLLOUT_PRESETS  # SeqGAN's presets, unchanged: the comparison varies only the baseline


class SeqGANBaselineTrainer(RolloutTrainer):
    """SeqGAN's step with the advantage of `cfg.baseline` in place of the rollout's Q."""

    method = "seqgan-baseline"  # the CLI prefix its config errors name

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        self.advantage = ADVANTAGES[cfg.baseline]

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        q, perf = self.rollout_rewards(x)  # (B, T)
        # the raw Q's drift is what SeqGAN logs as train/reward; the update sees only A
        return self.advantage(q), perf | {"train/q_mean": q.mean().item()}


METHOD = MethodSpec(
    name="seqgan-baseline",
    summary="SeqGAN with an unbiased baseline (batch leave-one-out or the previous position's "
    "rollouts) subtracted from the rollout's Q",
    config=Config,
    presets=PRESETS,
    make_trainer=SeqGANBaselineTrainer,
    budget=budget,
)
