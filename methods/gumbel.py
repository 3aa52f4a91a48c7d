"""Gumbel-softmax GAN, RelGAN-style: exact hard sampling, relaxed one-hot vectors for the critic.

After Nie et al. 2019 (RelGAN) on the shared LSTM (shared/reference/relaxation-gans.md §2.2): the
generator samples by Gumbel-max and feeds back the hard token; the critic (methods/critic.py)
sees the relaxed one-hot softmax(beta (o_t + g_t)) instead, through which gradients reach the
logits, with the inverse temperature beta annealed from 1 to beta_max. Details and what is not
copied from RelGAN: docs/methods.md, "Gumbel-softmax GAN".

Source key: [RELGAN] = weilinie/RelGAN at 7402725 (code) and the ICLR-2019 submission (paper);
see shared/reference/relaxation-gans.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import (
    Budget,
    Checkpointable,
    MethodSpec,
    Minibatches,
    StepCount,
    TrainContext,
    parameter_count,
)
from methods.config import check_widths, hp
from methods.critic import SequenceCNN, gumbel_noise
from methods.generator import LSTMGenerator


@dataclass(frozen=True)
class Config:
    updates: int = hp(
        3000,
        "generator updates after pre-training (the annealing horizon N of beta)",
        source="[RELGAN] oracle nadv_steps=3000",
        check="nonneg",
    )
    eval_every: int = hp(
        20,
        "updates between evaluations",
        source="[RELGAN] evaluates every 20 steps",
        check="positive",
    )
    batch_size: int = hp(
        64, "sequences per batch (real and fake)", source="[RELGAN]", check="positive"
    )
    critic_steps: int = hp(
        5,
        "critic updates per generator update, on fresh batches",
        source="[RELGAN] dsteps=5",
        check="positive",
    )
    g_lr: float = hp(
        1e-4,
        "generator Adam learning rate",
        source="[RELGAN] adversarial Adam 1e-4",
        check="positive",
    )
    critic_lr: float = hp(
        1e-4,
        "critic Adam learning rate",
        source="[RELGAN] adversarial Adam 1e-4",
        check="positive",
    )
    adam_b1: float = hp(
        0.9,
        "Adam beta1 (generator and critic)",
        source="[RELGAN] (the TensorFlow default)",
        check="nonneg",
    )
    adam_b2: float = hp(
        0.999,
        "Adam beta2 (generator and critic)",
        source="[RELGAN] (the TensorFlow default)",
        check="unit",
    )
    clip: float = hp(
        5.0,
        "global gradient-norm clip (generator and critic)",
        source="[RELGAN] global-norm clip 5.0",
        check="positive",
    )
    beta_max: float = hp(
        100.0,
        "final inverse temperature beta of the relaxed one-hot vectors",
        source="[RELGAN] real-data runs and the top of its synthetic sweep {2,5,10,100}; the "
        "paper's Table 1 oracle row used 1 (no annealing)",
        check="ge1",
    )
    beta_schedule: str = hp(
        "exp",
        "beta annealing over the N=updates adversarial steps i=0..N-1: exp = "
        "beta_max^(i/N), lin = 1 + i/(N-1) (beta_max-1)",
        source="[RELGAN] get_fixed_temperature 'exp' (its code fixes N=5000; here N=updates)",
        choices=("exp", "lin"),
    )
    loss: str = hp(
        "rsgan",
        "adversarial loss: rsgan = relativistic standard GAN, standard = non-saturating",
        source="[RELGAN] paper §2.4: RSGAN beat standard and hinge on synthetic data",
        choices=("rsgan", "standard"),
    )
    critic_emb_dim: int = hp(
        64,
        "width of the critic's linear embedding of the V-dim rows",
        source="[RELGAN] dis_emb_dim",
        check="positive",
    )
    critic_num_filters: int = hp(
        300,
        "critic convolution maps per filter width",
        source="[RELGAN] 300 filters per width",
        check="positive",
    )
    critic_filter_sizes: tuple[int, ...] = hp(
        (2, 3, 4, 5),
        "critic convolution widths, comma-separated (each <= sequence length)",
        source="[RELGAN] discriminator filter sizes",
        check="positive",
        items=int,
        within_seq_len=True,
    )


FILTER_SIZES_FLAG = "--gumbel.critic-filter-sizes"

PRESETS = {
    # smoke: a handful of updates with a small critic, for the CI end-to-end run (seconds)
    "smoke": dict(
        updates=4,
        eval_every=2,
        batch_size=16,
        critic_steps=2,
        critic_emb_dim=16,
        critic_num_filters=8,
    ),
    # quick: sized for 2 CPU cores (V=5000, 10k train; docs/methods.md, "Measured costs"):
    # 3 critic steps, a 64x4x64 critic; beta still
    # annealed 1 -> ~100; 10 evaluations
    "quick": dict(updates=160, eval_every=16, critic_steps=3, critic_num_filters=64),
    # long: RelGAN's 3,000 generator updates (beta annealed over all of them) with quick's critic
    "long": dict(eval_every=200, critic_steps=3, critic_num_filters=64),
    "paper": {},
}


# ----- the pieces of the algorithm -----
# log of 2^-64: a relaxed row's entries below 2^-64 of its largest are made exact zeros
RELAXED_FLOOR = -64 * math.log(2)


def relaxed_one_hot(perturbed: Tensor, beta: float) -> Tensor:
    """softmax(beta * perturbed) over the last dim (..., V), except that entries below 2^-64 of
    their row's largest are exact zeros, with no gradient.

    Plain softmax leaves many entries subnormal at intermediate beta (below float32's normal
    range: several times slower CPU arithmetic, tests/test_gumbel_benchmark.py). A kept entry is
    at least 2^-64 / V, far above that range, and a dropped one moves a row's embedding by less than
    float32's resolution of its largest entry (2^-24) times 2^-40.
    """
    z = beta * perturbed  # (..., V)
    floor = z.detach().amax(dim=-1, keepdim=True) + RELAXED_FLOOR  # (..., 1)
    return torch.softmax(z.masked_fill(z < floor, -math.inf), dim=-1)  # (..., V)


def beta_at(i: int, n: int, beta_max: float, schedule: str) -> float:
    """Inverse temperature at adversarial step i of n (i = 0..n-1); starts at 1 ([RELGAN])."""
    if schedule == "exp":
        return beta_max ** (i / max(n, 1))
    return 1 + i / max(n - 1, 1) * (beta_max - 1)


def gumbel_rollout(
    generator: LSTMGenerator, n: int, beta: float, rng: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample n sequences with hard feedback: tokens (n, T), the relaxed one-hots (n, T, V)
    softmax(beta (logits + g)) (`relaxed_one_hot`), differentiable in the logits, and the
    logits (n, T, V), detached."""
    tokens, state = generator.start_tokens(n), generator.initial_state(n)
    out, relaxed, logits_seq = [], [], []
    for _ in range(generator.seq_len):
        logits, state = generator.step(tokens, state)  # (B, V)
        perturbed = logits + gumbel_noise(logits.shape, rng, logits.device)  # (B, V)
        tokens = perturbed.detach().argmax(dim=-1)  # (B,): an exact sample of softmax(logits)
        out.append(tokens)
        relaxed.append(relaxed_one_hot(perturbed, beta))  # (B, V)
        logits_seq.append(logits.detach())
    return torch.stack(out, dim=1), torch.stack(relaxed, dim=1), torch.stack(logits_seq, dim=1)


def entropy(logits: Tensor) -> Tensor:
    """Mean entropy (nats) of the distributions softmax(logits) over the rows of (..., V)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1).mean()


def gan_losses(kind: str, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """(critic loss, g_loss) from the critic's logits (B,) on real and on fake rows;
    BCE(z, 1) = softplus(-z).

    rsgan pairs real and fake element-wise: BCE(C(real) - C(fake), 1) and the reverse for G.
    """
    if kind == "rsgan":
        return F.softplus(fake - real).mean(), F.softplus(real - fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean(), F.softplus(-fake).mean()


class GumbelTrainer(Checkpointable):
    """One step = `critic_steps` critic updates, then one generator update at the current beta."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator, self.rng = cfg, generator, ctx.rng
        task = ctx.task  # the widths are checked against T here: the oracle fixes T, not the CLI
        sizes = check_widths(cfg.critic_filter_sizes, task.seq_len, FILTER_SIZES_FLAG)
        self.critic = SequenceCNN(
            task.vocab_size, cfg.critic_emb_dim, cfg.critic_num_filters, sizes
        )
        self.critic.to(ctx.device).init_(ctx.rng)
        betas = (cfg.adam_b1, cfg.adam_b2)
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr, betas=betas)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=betas)
        self.batches = Minibatches(task.train, cfg.batch_size, ctx.rng, ctx.device)
        self.done = StepCount()  # adversarial steps done: the position on the beta schedule

    def parts(self) -> dict:
        return {
            "generator": self.generator,
            "critic": self.critic,
            "g_opt": self.g_opt,
            "critic_opt": self.critic_opt,
            "batches": self.batches,
            "done": self.done,
        }

    @property
    def beta(self) -> float:
        return beta_at(self.done.value, self.cfg.updates, self.cfg.beta_max, self.cfg.beta_schedule)

    def real_scores(self) -> Tensor:
        """The critic's logits (B,) on a fresh batch of real sequences (one-hot rows, a lookup)."""
        return self.critic.score(self.critic.embed_tokens(next(self.batches)))

    def critic_step(self) -> float:
        """One critic update; its loss."""
        with torch.no_grad():
            _, fake, _ = gumbel_rollout(self.generator, self.cfg.batch_size, self.beta, self.rng)
        loss, _ = gan_losses(self.cfg.loss, self.real_scores(), self.critic(fake))
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), self.cfg.clip)
        self.critic_opt.step()
        return loss.item()

    def generator_loss(self) -> tuple[Tensor, Tensor]:
        """(g_loss, entropy of the per-step distributions), relaxed fakes with gradient."""
        _, fake, logits = gumbel_rollout(self.generator, self.cfg.batch_size, self.beta, self.rng)
        _, g_loss = gan_losses(self.cfg.loss, self.real_scores(), self.critic(fake))
        return g_loss, entropy(logits)

    def step(self) -> dict[str, float]:
        critic_losses = [self.critic_step() for _ in range(self.cfg.critic_steps)]
        self.critic.requires_grad_(False)  # the generator step needs no critic weight gradients
        g_loss, ent = self.generator_loss()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.critic.requires_grad_(True)
        grad_norm = nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.clip)
        self.g_opt.step()
        beta = self.beta
        self.done.value += 1
        return {
            "train/d_loss": sum(critic_losses) / len(critic_losses),  # mean over the updates
            "train/g_loss": g_loss.item(),
            "train/entropy": ent.item(),
            "train/beta": beta,
            "train/grad_norm": grad_norm.item(),
        }


def budget(cfg: Config, vocab_size: int, seq_len: int, n_train: int) -> Budget:
    """`critic_steps` critic updates per generator update; the critic's size."""
    sizes = check_widths(cfg.critic_filter_sizes, seq_len, FILTER_SIZES_FLAG)
    critic = SequenceCNN(vocab_size, cfg.critic_emb_dim, cfg.critic_num_filters, sizes)
    return Budget(cfg.updates, cfg.critic_steps, parameter_count(critic))


METHOD = MethodSpec(
    name="gumbel",
    summary="RelGAN-style Gumbel-softmax GAN: hard Gumbel-max feedback, relaxed one-hots to the "
    "critic",
    config=Config,
    presets=PRESETS,
    budget=budget,
    make_trainer=GumbelTrainer,
)
