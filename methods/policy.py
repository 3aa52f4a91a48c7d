"""What every policy-gradient method shares, whatever judges its samples: the generator's fields
and its REINFORCE update.

`PolicyTrainer.step` samples a batch, asks the method for per-token weights (`rewards`), makes
one policy-gradient update and then whatever the judge does between updates (`after_update`:
a learned discriminator's d-steps in methods/pg.py, nothing for the oracle's exact
discriminator in methods/oracle_discriminator.py).

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb, [PAPER] = the SeqGAN paper (AAAI-17); see
shared/reference/seqgan-original.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from methods.base import Checkpointable, TrainContext
from methods.config import ConfigError, hp
from methods.generator import LSTMGenerator

MAX_ROLLOUT_CHUNK = 65_536  # completions scored together; memory ~ chunk * V * 4 bytes


@dataclass(frozen=True)
class PolicyConfig:
    updates: int = hp(
        200,
        "adversarial iterations: each is 1 policy-gradient update (plus the judge's work)",
        source="[HEAD] TOTAL_BATCH",
        check="nonneg",
    )
    eval_every: int = hp(
        5, "updates between evaluations", source="[HEAD] every 5 iterations", check="positive"
    )
    batch_size: int = hp(
        64, "sequences per policy-gradient update", source="[HEAD] BATCH_SIZE", check="positive"
    )
    g_lr: float = hp(
        0.01,
        "generator Adam learning rate of the adversarial phase (a fresh optimizer)",
        source="[HEAD] generator.py learning_rate",
        check="positive",
    )
    g_clip: float = hp(
        5.0,
        "global gradient-norm clip of the generator",
        source="[HEAD] grad_clip",
        check="positive",
    )

    def __post_init__(self) -> None:
        """Checks across fields; subclasses extend it (and call this)."""


@dataclass(frozen=True)
class RolloutFields(PolicyConfig):
    """The Monte-Carlo rollout's fields, whichever discriminator scores the completions."""

    rollout_num: int = hp(
        16,
        "Monte-Carlo completions per prefix (N)",
        source="[HEAD] rollout.get_reward(sess, samples, 16, discriminator)",
        check="positive",
    )
    rollout_chunk: int = hp(
        1024,
        "completions the fast rollout samples and scores together (memory vs. batching; "
        "results depend on it only through the order of random draws)",
        source="tuning: 256, 512 and 1024 within noise on 2 CPU cores at the paper configuration; "
        "1024 = N*B, one prefix length of the paper batch at a time",
        check="positive",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rollout_num > self.rollout_chunk:  # a prefix's N completions are one chunk
            raise ConfigError(
                f"rollout-num={self.rollout_num} exceeds rollout-chunk={self.rollout_chunk}: "
                "the N completions of a prefix are sampled together, so N may not exceed the "
                "chunk that bounds the rollout's memory"
            )
        if self.rollout_chunk > MAX_ROLLOUT_CHUNK:
            raise ConfigError(
                f"rollout-chunk={self.rollout_chunk} exceeds {MAX_ROLLOUT_CHUNK}: the rollout "
                "holds a (chunk, V) float32 table, 1.3 GB at the paper's V = 5000"
            )


class PolicyTrainer(Checkpointable):
    """One step = a fresh batch, its per-token weights (`rewards`), one policy-gradient update,
    then `after_update`. Subclasses define both; `method` is the CLI prefix their config errors
    name."""

    method = "pg"

    def __init__(self, cfg: PolicyConfig, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator = cfg, generator
        self.rng, self.device = ctx.rng, ctx.device
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr)

    def parts(self) -> dict:
        return {"generator": self.generator, "g_opt": self.g_opt}

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Per-token weights (B, T) of samples x (B, T), and scalars to log."""
        raise NotImplementedError

    def after_update(self) -> dict[str, float]:
        """The judge's work between two generator updates; scalars to log."""
        return {}

    def update_generator(self, x: Tensor, q: Tensor) -> dict[str, float]:
        """One policy-gradient step: loss = -sum_{b,t} log G(x_t | x_<t) * q[b, t]."""
        logp = torch.log_softmax(self.generator(x), dim=-1)  # (B, T, V)
        token_logp = logp.gather(-1, x.unsqueeze(-1)).squeeze(-1)  # (B, T)
        loss = -(token_logp * q).sum()
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.g_clip)
        self.g_opt.step()
        with torch.no_grad():
            entropy = -(logp.exp() * logp).sum(dim=-1).mean()  # per token, on G's own samples
        return {
            "train/g_loss": loss.item(),
            "train/grad_norm": grad_norm.item(),
            "train/entropy": entropy.item(),
            "train/reward": q.mean().item(),
        }

    def step(self) -> dict[str, float]:
        x = self.generator.sample(self.cfg.batch_size, rng=self.rng)  # (B, T)
        q, perf = self.rewards(x)
        scalars = self.update_generator(x, q)
        return scalars | self.after_update() | perf


def sync(device: torch.device) -> None:
    """Wall-clock timing of GPU work needs the queue drained first."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
