"""What the policy-gradient GANs with a learned discriminator share: the CNN discriminator, its
d-steps and held-out check, and (for the methods that reward each token) the Monte-Carlo rollout.

`PGTrainer` runs SeqGAN's procedure as in its code: discriminator pre-training, then per `step()`
a sampled batch, its per-token rewards (each method's `rewards`), one policy-gradient update
(methods/policy.py) and `d_steps` d-steps. `RolloutTrainer` adds the timed Monte-Carlo rollout
of methods/rollout.py.
The procedure step by step: docs/methods.md, "The policy-gradient procedure".

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb, [PAPER] = the SeqGAN paper (AAAI-17); see
shared/reference/seqgan-original.md.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from methods.base import Budget, TrainContext, parameter_count
from methods.config import ConfigError, check_widths, flag_name, hp, render
from methods.discriminator import Discriminator
from methods.generator import LSTMGenerator
from methods.policy import PolicyConfig, PolicyTrainer, RolloutFields, sync
from methods.rollout import (
    Rollout,
    Workspace,
    completions_scored,
    fast_rollout_rewards,
    reference_rollout_rewards,
)


@dataclass(frozen=True)
class PGConfig(PolicyConfig):
    """methods/policy.py's generator fields and the learned CNN discriminator's."""

    discriminator_emb_dim: int = hp(
        64,
        "discriminator token-embedding size",
        source="[HEAD] dis_embedding_dim",
        check="positive",
    )
    discriminator_filter_sizes: tuple[int, ...] = hp(
        (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
        "discriminator convolution widths, comma-separated (each <= sequence length)",
        source="[HEAD] dis_filter_sizes; [PAPER] Table 5",
        check="positive",
        items=int,
        within_seq_len=True,
    )
    discriminator_num_filters: tuple[int, ...] = hp(
        (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),
        "feature maps per convolution width, comma-separated",
        source="[HEAD] dis_num_filters",
        check="positive",
        items=int,
    )
    discriminator_dropout_keep: float = hp(
        0.75,
        "keep probability of the dropout after the highway layer (training only)",
        source="[HEAD] dis_dropout_keep_prob",
        check="unit",
    )
    discriminator_l2: float = hp(
        0.2,
        "L2 weight on the output layer only (lambda * sum(w^2)/2)",
        source="[HEAD] dis_l2_reg_lambda",
        check="nonneg",
    )
    discriminator_lr: float = hp(
        1e-4, "discriminator Adam learning rate", source="[HEAD] discriminator.py", check="positive"
    )
    discriminator_batch_size: int = hp(
        64, "discriminator minibatch size", source="[HEAD] dis_batch_size", check="positive"
    )
    discriminator_samples: int = hp(
        0,
        "oracle positives per d-step, with as many fresh generator negatives; 0 = the whole "
        "training set",
        source="[HEAD]: all 9,984 positives and 9,984 negatives",
        check="nonneg",
    )
    d_pretrain_steps: int = hp(
        50, "d-steps of discriminator pre-training", source="[HEAD]", check="nonneg"
    )
    d_pretrain_epochs: int = hp(
        3, "epochs per pre-training d-step", source="[HEAD]", check="positive"
    )
    d_steps: int = hp(
        5,
        "d-steps after every generator update",
        source="[HEAD]; [PAPER] Fig. 3(d)",
        check="nonneg",
    )
    d_epochs: int = hp(3, "epochs per d-step", source="[HEAD]; [PAPER] k=3", check="positive")

    def __post_init__(self) -> None:
        super().__post_init__()
        sizes, counts = self.discriminator_filter_sizes, self.discriminator_num_filters
        if len(sizes) != len(counts):  # here, so the CLI rejects it before training
            raise ConfigError(
                f"discriminator-filter-sizes {render(sizes)!r} has {len(sizes)} widths but "
                f"discriminator-num-filters {render(counts)!r} has {len(counts)} counts; give one "
                "per width"
            )


@dataclass(frozen=True)
class RolloutConfig(PGConfig, RolloutFields):
    """The learned-discriminator methods' rollout: methods/policy.py's rollout fields and which
    implementation draws it."""

    rollout: str = hp(
        "fast",
        "rollout implementation: 'fast' or 'reference' (the original's loops; same estimator)",
        source="this project",
        choices=("fast", "reference"),
    )


# quick and long: a D with a quarter of the paper's maps and half its embedding (100k conv + 371k
# highway parameters); one light d-step per update
_REDUCED_DISCRIMINATOR = dict(
    discriminator_emb_dim=32,
    discriminator_num_filters=(25, 50, 50, 50, 50, 25, 25, 25, 25, 25, 40, 40),
    discriminator_samples=1500,
    d_pretrain_steps=10,
    d_pretrain_epochs=1,
    d_steps=1,
    d_epochs=1,
)

PRESETS = {
    # smoke: a tiny D, small d-steps, 4 updates of small batches (seconds)
    "smoke": dict(
        updates=4,
        eval_every=2,
        batch_size=16,
        discriminator_emb_dim=16,
        discriminator_filter_sizes=(2, 3),
        discriminator_num_filters=(8, 8),
        discriminator_samples=128,
        d_pretrain_steps=2,
        d_pretrain_epochs=1,
        d_steps=1,
        d_epochs=1,
    ),
    # quick: the paper's batch 64, 40 updates (its measured cost: docs/methods.md, "Measured
    # costs")
    "quick": dict(updates=40, eval_every=5) | _REDUCED_DISCRIMINATOR,
    # long: the original code's 200 adversarial iterations with quick's discriminator work
    "long": dict(eval_every=10) | _REDUCED_DISCRIMINATOR,
    "paper": {},
}

# the rollout methods' smoke preset also makes fewer completions
ROLLOUT_PRESETS = PRESETS | {"smoke": PRESETS["smoke"] | dict(rollout_num=4)}

# held-out oracle rows (and as many fresh samples) of D's accuracy check after every update:
# its standard error is at most 0.5 / sqrt(1000) = 0.016
HELDOUT_CHECK = 500


def stronger_discriminator(presets: dict[str, dict], factor: int) -> dict[str, dict]:
    """`presets` with `factor` times the d-steps after each update and the d-steps of D's
    pre-training: `factor` times the discriminator updates, the same D and examples per d-step."""
    default = PGConfig()
    return {
        name: p
        | {
            "d_steps": factor * p.get("d_steps", default.d_steps),
            "d_pretrain_steps": factor * p.get("d_pretrain_steps", default.d_pretrain_steps),
        }
        for name, p in presets.items()
    }


class PGTrainer(PolicyTrainer):
    """methods/policy.py's step with a learned CNN discriminator: pre-trained before the first
    update, `d_steps` d-steps after each, its held-out accuracy checked after them. Subclasses
    define `rewards`."""

    def __init__(self, cfg: PGConfig, ctx: TrainContext, generator: LSTMGenerator) -> None:
        super().__init__(cfg, ctx, generator)
        task = ctx.task  # the widths are checked against T here: the oracle fixes T, not the CLI
        flag = flag_name(self.method, "discriminator_filter_sizes")
        sizes = check_widths(cfg.discriminator_filter_sizes, task.seq_len, flag)
        init_seed = int(torch.randint(0, 2**62, (1,), generator=ctx.rng, device=ctx.rng.device))
        self.discriminator = (
            Discriminator(
                task.vocab_size,
                task.seq_len,
                cfg.discriminator_emb_dim,
                sizes,
                cfg.discriminator_num_filters,
                cfg.discriminator_dropout_keep,
            )
            .init_original_(torch.Generator().manual_seed(init_seed))
            .to(ctx.device)
        )
        self.positives = task.train.to(ctx.device)  # (n_train, T): D's real examples
        self.heldout = task.test[:HELDOUT_CHECK].to(ctx.device)  # (n, T): never trained on
        self.checks = CheckStream(ctx.seed)
        # fused: Adam's arithmetic in one kernel, ~4x faster than the per-tensor loop on CPU for
        # D's highway-sized parameters (docs/performance.md)
        self.discriminator_opt = torch.optim.Adam(
            self.discriminator.parameters(), lr=cfg.discriminator_lr, fused=True
        )
        self.setup(cfg)
        if ctx.fresh:  # a resumed trainer gets its pre-trained D from the checkpoint
            self.train_discriminator(cfg.d_pretrain_steps, cfg.d_pretrain_epochs)

    def setup(self, cfg: PGConfig) -> None:
        """What a subclass builds before D's pre-training (nothing here)."""

    def parts(self) -> dict:
        return super().parts() | {
            "discriminator": self.discriminator,
            "discriminator_opt": self.discriminator_opt,
            "checks": self.checks,
        }

    @torch.no_grad()
    def sequence_logit(self, x: Tensor) -> Tensor:
        """(B,) logit D(Y) = log D/(1-D) of samples x (B, T), dropout off."""
        logits = self.discriminator(x)  # (B, 2)
        return logits[:, 1] - logits[:, 0]  # log D/(1-D) of the 2-class softmax

    def after_update(self) -> dict[str, float]:
        sync(self.device)
        t0 = time.perf_counter()
        scalars = self.train_discriminator(self.cfg.d_steps, self.cfg.d_epochs)
        sync(self.device)
        d_train_ms = 1000 * (time.perf_counter() - t0)
        return scalars | self.heldout_check() | {"perf/d_train_ms": d_train_ms}

    @torch.no_grad()
    def heldout_check(self) -> dict[str, float]:
        """D's accuracy on examples it never trained on: held-out oracle rows and as many fresh
        generator samples, dropout off. The samples come from their own random stream (the
        replicate seed and this check's number), so training draws nothing more."""
        rng = self.checks.next_generator(self.device)
        n = self.heldout.shape[0]
        fakes = self.generator.sample(n, rng=rng)  # (n, T)
        real = self.sequence_logit(self.heldout) > 0  # (n,): D says real
        fake = self.sequence_logit(fakes) <= 0
        return {"train/d_heldout_acc": torch.cat([real, fake]).float().mean().item()}

    # ----- discriminator -----
    def train_discriminator(self, steps: int, epochs: int) -> dict[str, float]:
        """`steps` d-steps; each: fresh negatives vs. positives, shuffled once, `epochs` epochs."""
        losses, accs = [], []
        for _ in range(steps):
            data, labels = self._discriminator_examples()
            order = torch.randperm(data.shape[0], generator=self.rng, device=self.rng.device)
            order = order.to(self.device)
            bs = self.cfg.discriminator_batch_size
            for _ in range(epochs):
                for i in range(0, data.shape[0] - bs + 1, bs):  # the original drops the remainder
                    idx = order[i : i + bs]
                    loss, acc = self.discriminator.loss(
                        data[idx], labels[idx], self.cfg.discriminator_l2, self.rng
                    )
                    self.discriminator_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.discriminator_opt.step()
                    losses.append(loss.detach())
                    accs.append(acc)
        if not losses:
            return {}
        return {
            "train/d_loss": torch.stack(losses).mean().item(),
            "train/d_acc": torch.stack(accs).mean().item(),
        }

    def _discriminator_examples(self) -> tuple[Tensor, Tensor]:
        """Positives (all, or a fresh random subset) and as many fresh negatives, labelled 1/0."""
        n_pos = self.positives.shape[0]
        wanted = self.cfg.discriminator_samples
        n = n_pos if wanted == 0 else min(wanted, n_pos)
        pos = self.positives
        if n < n_pos:
            pick = torch.randperm(n_pos, generator=self.rng, device=self.rng.device)[:n]
            pos = pos[pick.to(self.device)]
        neg = self.generator.sample(n, rng=self.rng)  # (n, T)
        labels = torch.cat([torch.ones(n), torch.zeros(n)]).long().to(self.device)
        return torch.cat([pos, neg]), labels  # (2n, T), (2n,)


class RolloutTrainer(PGTrainer):
    """A `PGTrainer` with the Monte-Carlo rollout of `RolloutConfig` (`--<method>.rollout`
    picks its fast implementation or the original's loops: the same estimator)."""

    def setup(self, cfg: RolloutConfig) -> None:
        rollouts: dict[str, Rollout] = {
            "fast": partial(fast_rollout_rewards, chunk=cfg.rollout_chunk, workspace=Workspace()),
            "reference": reference_rollout_rewards,
        }
        self.rollout = rollouts[cfg.rollout]

    def rollout_rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Q (B, T) for samples x (B, T), and the rollout's perf scalars."""
        sync(self.device)
        t0 = time.perf_counter()
        q = self.rollout(self.generator, self.discriminator, x, self.cfg.rollout_num, self.rng)
        sync(self.device)
        seconds = time.perf_counter() - t0
        completions = completions_scored(x.shape[0], x.shape[1], self.cfg.rollout_num)
        perf = {"perf/rollout_ms": 1000 * seconds, "perf/completions_per_s": completions / seconds}
        return q, perf


def budget(cfg: PGConfig, vocab_size: int, seq_len: int, n_train: int) -> Budget:
    """D's Adam updates per generator update: d_steps x d_epochs x the minibatches of one
    d-step's 2n examples (n positives, n negatives, the remainder dropped); D's size."""
    n = min(cfg.discriminator_samples or n_train, n_train)
    per_d_step = cfg.d_epochs * (2 * n // cfg.discriminator_batch_size)
    sizes = check_widths(
        cfg.discriminator_filter_sizes, seq_len, "--budget.discriminator-filter-sizes"
    )
    d = Discriminator(
        vocab_size, seq_len, cfg.discriminator_emb_dim, sizes, cfg.discriminator_num_filters
    )
    return Budget(cfg.updates, cfg.d_steps * per_d_step, parameter_count(d))


class CheckStream:
    """Random generators for D's held-out checks, one per check, from the replicate seed and the
    check's number: checkpointed, so a resumed cell draws the same samples, and apart from the
    training stream, so the checks change nothing else."""

    def __init__(self, seed: int) -> None:
        self.seed, self.count = seed, 0

    def next_generator(self, device: torch.device) -> torch.Generator:
        self.count += 1
        name = f"d-heldout/{self.seed}/{self.count}".encode()
        seed = int.from_bytes(hashlib.sha256(name).digest()[:8], "little") >> 1
        return torch.Generator(device).manual_seed(seed)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "count": self.count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.count = int(state["seed"]), int(state["count"])
