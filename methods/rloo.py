"""RLOO and its RLHF-era relatives: sequence-level REINFORCE on the reward logit D(Y).

Each sampled sequence Y_b is one action with reward r_b = logit D(Y_b) - beta * KL_b, where
KL_b = log G(Y_b) - log G_ref(Y_b) is the k1 estimate of the KL to the frozen pre-trained
generator G_ref (beta = 0 by default: no penalty). The advantage is r_b minus the leave-one-out
mean of the batch (RLOO, Ahmadian et al. 2024; TRL's RloOTrainer puts the KL in the reward as
here), or the batch z-score (GRPO-style: with unconditional generation the group is the batch),
or REINFORCE++'s global-batch normalisation of per-token returns (the KL enters each token's
return-to-go). An optional PPO-style clipped update makes `ppo_epochs` passes over the same
batch (1: plain REINFORCE, the ratio is exactly 1). With D learned (methods/pg.py: SeqGAN's CNN
and d-steps) it is a GAN; with the exact D* (`-oracle-d`, methods/oracle_discriminator.py) the
reward log P - log G makes its expected update the exact gradient of -KL(G||P). Derivations and
sources: docs/methods.md, "RLOO and the KL-exact estimators" (shared/reference/pg-family.md §3,
estimators-and-oracle.md §2).

Registered: `rloo` (learned D), `rloo-oracle-d`, and with beta = 1 `rloo-kl`,
`rloo-kl-oracle-d`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from methods.base import MethodSpec
from methods.config import ConfigError, hp
from methods.generator import LSTMGenerator
from methods.oracle_discriminator import OracleTrainer, without_discriminator
from methods.oracle_discriminator import budget as oracle_budget
from methods.pg import PRESETS as PG_PRESETS
from methods.pg import PGConfig, PGTrainer, budget
from methods.policy import PolicyConfig

EPS = 1e-8  # added to a standard deviation before dividing by it (TRL's and OpenRLHF's value)


def leave_one_out_advantage(r: Tensor) -> Tensor:
    """(B,) -> (B,): r_b minus the mean of the other B-1 rewards (independent of r_b)."""
    return r - (r.sum() - r) / (r.shape[0] - 1)


def rloo(logit: Tensor, kl: Tensor, beta: float) -> Tensor:
    """Advantages (B, T) from sequence logits (B,) and per-token KL terms (B, T): the
    leave-one-out advantage of r = logit - beta * sum_t kl, the same for every token."""
    r = logit - beta * kl.sum(dim=1)  # (B,)
    return leave_one_out_advantage(r)[:, None].expand_as(kl)  # (B, T)


def grpo(logit: Tensor, kl: Tensor, beta: float) -> Tensor:
    """As `rloo`, but the batch z-score (r - mean) / (std + EPS), std with Bessel's correction."""
    r = logit - beta * kl.sum(dim=1)  # (B,)
    return ((r - r.mean()) / (r.std() + EPS))[:, None].expand_as(kl)  # (B, T)


def reinforce_pp(logit: Tensor, kl: Tensor, beta: float) -> Tensor:
    """REINFORCE++: token t's return logit - beta * sum_{s >= t} kl_s, normalised over all B*T
    tokens of the batch. At beta = 0 every token of a sequence has its logit as return, so it is
    the batch z-score up to the std's ddof (B*T - 1 tokens instead of B - 1 sequences)."""
    to_go = kl.flip(1).cumsum(dim=1).flip(1)  # (B, T): sum over s >= t
    g = logit[:, None] - beta * to_go  # (B, T)
    return (g - g.mean()) / (g.std() + EPS)


ADVANTAGES: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "rloo": rloo,
    "grpo": grpo,
    "reinforce++": reinforce_pp,
}


@dataclass(frozen=True)
class RLOOFields(PolicyConfig):
    """methods/policy.py's generator fields and the estimator's own."""

    advantage: str = hp(
        "rloo",
        "advantage: 'rloo' (reward minus the leave-one-out batch mean), 'grpo' (batch z-score), "
        "'reinforce++' (per-token returns normalised over the batch's tokens)",
        source="RLOO: Ahmadian et al. 2024 / TRL; GRPO: Shao et al. 2024; REINFORCE++: Hu et al. "
        "2025 (arXiv 2501.03262)",
        choices=tuple(ADVANTAGES),
    )
    kl_beta: float = hp(
        0.0,
        "weight beta of the KL to the frozen pre-trained generator in the reward, r = logit D - "
        "beta (log G - log G_ref). With the oracle D, beta = 1 makes the expected update the "
        "gradient of -KL(G||P) - KL(G||G_ref): the pull towards the oracle and towards the "
        "pre-trained generator weigh the same",
        source="TRL RLOO puts the KL in the reward; 0 = no penalty",
        check="nonneg",
    )
    ppo_epochs: int = hp(
        1,
        "passes of a PPO-style clipped update over each batch (1 = plain REINFORCE: the "
        "probability ratio is exactly 1)",
        source="PPO (Schulman et al. 2017); 1 = this suite's REINFORCE default",
        check="positive",
    )
    ppo_clip: float = hp(
        0.2,
        "PPO's clip range epsilon of the ratio G/G_old (matters only when ppo-epochs > 1)",
        source="PPO's default",
        check="positive",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 2:  # the leave-one-out mean and the batch std need 2 samples
            raise ConfigError(
                f"batch-size={self.batch_size} is too small: the advantages compare each "
                "sample with the rest of its batch, so at least 2 are needed"
            )


@dataclass(frozen=True)
class Config(PGConfig, RLOOFields):
    """The estimator's fields and SeqGAN's learned discriminator (methods/pg.py)."""


@dataclass(frozen=True)
class OracleConfig(RLOOFields):
    """The estimator's fields alone: D* is exact."""


# SeqGAN's schedule and discriminator, as MaliGAN's: comparable update for update
PRESETS = PG_PRESETS
ORACLE_PRESETS = without_discriminator(PRESETS, OracleConfig)
KL = dict(kl_beta=1.0)


def with_kl(presets: dict[str, dict]) -> dict[str, dict]:
    return {name: p | KL for name, p in presets.items()}


def frozen_copy(generator: LSTMGenerator) -> LSTMGenerator:
    return copy.deepcopy(generator).requires_grad_(False)


class RLOOSteps:
    """The estimator's rewards and update, whichever D gives the sequence logits."""

    def parts(self) -> dict:
        return super().parts() | {"reference": self.reference}

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        logit = self.sequence_logit(x)  # (B,): no gradient
        with torch.no_grad():
            kl = self.generator.token_log_probs(x) - self.reference.token_log_probs(x)  # (B, T)
        a = ADVANTAGES[self.cfg.advantage](logit, kl, self.cfg.kl_beta)  # (B, T)
        return a, {
            "train/reward_logit": logit.mean().item(),
            "train/kl_ref": kl.sum(dim=1).mean().item(),
        }

    def update_generator(self, x: Tensor, q: Tensor) -> dict[str, float]:
        """`ppo_epochs` clipped steps: loss = -sum_{b,t} min(rho q, clip(rho, 1 +- eps) q),
        rho = G(x_t | x_<t) / G_old(x_t | x_<t); at the first pass rho = 1 and the gradient is
        REINFORCE's, -sum q grad log G."""
        with torch.no_grad():
            old = self.generator.token_log_probs(x)  # (B, T)
        eps, first = self.cfg.ppo_clip, {}
        for _ in range(self.cfg.ppo_epochs):
            logp = torch.log_softmax(self.generator(x), dim=-1)  # (B, T, V)
            ratio = (logp.gather(-1, x.unsqueeze(-1)).squeeze(-1) - old).exp()  # (B, T)
            loss = -torch.minimum(ratio * q, ratio.clamp(1 - eps, 1 + eps) * q).sum()
            self.g_opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.g_clip)
            self.g_opt.step()
            if not first:
                with torch.no_grad():
                    entropy = -(logp.exp() * logp).sum(dim=-1).mean()  # per token
                first = {
                    "train/g_loss": loss.item(),
                    "train/grad_norm": grad_norm.item(),
                    "train/entropy": entropy.item(),
                    "train/reward": q.mean().item(),
                }
        clipped = ((ratio - 1).abs() > eps).float().mean()  # of the last pass
        return first | {"train/clip_fraction": clipped.item()}


class RLOOTrainer(RLOOSteps, PGTrainer):
    """rloo: the estimator with SeqGAN's learned D and d-steps."""

    method = "rloo"

    def setup(self, cfg: Config) -> None:
        self.reference = frozen_copy(self.generator)


class KLTrainer(RLOOTrainer):
    method = "rloo-kl"


class OracleRLOOTrainer(RLOOSteps, OracleTrainer):
    """rloo-oracle-d: the estimator with the exact D*; no D is trained."""

    method = "rloo-oracle-d"

    def __init__(self, cfg: OracleConfig, ctx, generator: LSTMGenerator) -> None:
        super().__init__(cfg, ctx, generator)
        self.reference = frozen_copy(generator)


class OracleKLTrainer(OracleRLOOTrainer):
    method = "rloo-kl-oracle-d"


_SUMMARY = "RLOO: sequence-level REINFORCE on logit D with a leave-one-out baseline"

METHOD = MethodSpec(
    name="rloo",
    summary=f"{_SUMMARY}, SeqGAN's learned D",
    config=Config,
    presets=PRESETS,
    make_trainer=RLOOTrainer,
    budget=budget,
)

ORACLE_METHOD = MethodSpec(
    name="rloo-oracle-d",
    summary=f"{_SUMMARY}, the exact D*: its expected update is the gradient of -KL(G||P)",
    config=OracleConfig,
    presets=ORACLE_PRESETS,
    make_trainer=OracleRLOOTrainer,
    budget=oracle_budget,
)

KL_METHOD = MethodSpec(
    name="rloo-kl",
    summary=f"{_SUMMARY}, learned D, KL to the pre-trained generator in the reward (beta = 1)",
    config=Config,
    presets=with_kl(PRESETS),
    make_trainer=KLTrainer,
    budget=budget,
)

KL_ORACLE_METHOD = MethodSpec(
    name="rloo-kl-oracle-d",
    summary=f"{_SUMMARY}, the exact D*, KL to the pre-trained generator in the reward (beta = 1)",
    config=OracleConfig,
    presets=with_kl(ORACLE_PRESETS),
    make_trainer=OracleKLTrainer,
    budget=oracle_budget,
)
