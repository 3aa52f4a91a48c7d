"""WGAN-GP on softmax outputs: the shared LSTM unrolled with soft feedback, a Wasserstein critic.

After Gulrajani et al. 2017 (§5.5, `gan_language.py`), ported to the autoregressive generator
(shared/reference/relaxation-gans.md §1.4). At each step the generator emits its softmax p_t over
the vocabulary and feeds back the expected embedding p_t @ E, so the whole sequence of
distributions is differentiable. The critic compares those softmax rows with one-hot real rows.
Real data live on the simplex vertices and fake data inside the simplex, so a JS-type
discriminator would just reject "not one-hot"; a 1-Lipschitz critic (enforced by the gradient
penalty) instead gives a gradient that points from the interior towards the vertices.

The unroll is deterministic: with the generator's zero initial state and fixed start token, every
row of a fake batch is the same sequence of distributions (the shared LSTM has no noise input z).
Evaluation samples hard tokens from the generator the ordinary way; a collapsing per-step entropy
("train/entropy") is this method's typical failure.

Source key: [WGAN] = igul222/improved_wgan_training gan_language.py at fa66c57 and the WGAN-GP
paper (arXiv 1704.00028); [RELGAN] = weilinie/RelGAN at 7402725; see
shared/reference/relaxation-gans.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import MethodSpec, TrainContext, minibatches
from methods.config import hp
from methods.generator import LSTMGenerator


@dataclass(frozen=True)
class Config:
    updates: int = hp(
        3000,
        "generator updates after pre-training (each preceded by --wgan-gp.critic-steps)",
        source="no original for the LSTM port ([WGAN] runs 200,000 from scratch); RelGAN's "
        "oracle budget nadv_steps=3000, so both relaxation methods get the same",
        check="nonneg",
    )
    eval_every: int = hp(
        100, "updates between evaluations", source="[WGAN] logs n-gram JSD every 100 iterations",
        check="positive",
    )
    batch_size: int = hp(64, "sequences per batch (real and fake)", source="[WGAN] BATCH_SIZE",
                         check="positive")
    critic_steps: int = hp(
        10, "critic updates per generator update, each on fresh real and fake batches",
        source="[WGAN] CRITIC_ITERS ('5 should work fine as well')", check="positive",
    )
    gp_lambda: float = hp(10.0, "gradient-penalty weight", source="[WGAN] LAMBDA", check="nonneg")
    g_lr: float = hp(1e-4, "generator Adam learning rate", source="[WGAN]", check="positive")
    critic_lr: float = hp(1e-4, "critic Adam learning rate", source="[WGAN]", check="positive")
    adam_b1: float = hp(0.5, "Adam beta1 (generator and critic)", source="[WGAN] language script",
                        check="nonneg")
    adam_b2: float = hp(0.9, "Adam beta2 (generator and critic)", source="[WGAN]", check="unit")
    critic_emb_dim: int = hp(
        512, "width of the critic's linear embedding of the V-dim rows",
        source="[WGAN] DIM=512, the width of its k=1 input convolution", check="positive",
    )
    critic_filters: int = hp(
        128, "critic convolution maps per filter width (widths 2,3,4,5)",
        source="4 x 128 = [WGAN] DIM=512 features; the widths are [RELGAN]'s", check="positive",
    )


PRESETS = {
    # smoke: a handful of updates with a small critic, for the CI end-to-end run (seconds)
    "smoke": dict(updates=4, eval_every=2, batch_size=16, critic_steps=2, critic_emb_dim=16,
                  critic_filters=8),
    # quick: timed on 2 CPU cores, V=5000, 10k sequences: construction + all updates <= ~2.5 min
    # (see the report in the tests' header); 5 critic steps as [WGAN] allows, 10 evaluations
    "quick": dict(updates=150, eval_every=15, critic_steps=5, critic_emb_dim=64,
                  critic_filters=64),
    "paper": {},
}


# ----- the critic: a Kim-style CNN over (B, T, V) rows, identical in methods/gumbel.py -----
WIDTHS = (2, 3, 4, 5)  # [RELGAN] discriminator filter widths (widths above T are dropped)


class SequenceCNN(nn.Module):
    """Scores (B, T, V) rows of one-hot or relaxed tokens: one real-valued output per sequence.

    The first layer is a linear embedding applied by matmul, so a one-hot row reads out exactly
    one embedding row and a soft row the expected embedding: one function for real and fake.
    No batch (or any other) normalisation: it would couple the samples of a batch and break the
    per-sample gradient penalty. Max-over-time pooling and a highway layer follow SeqGAN's D.
    """

    def __init__(self, vocab_size: int, emb_dim: int, filters: int, seq_len: int) -> None:
        super().__init__()
        widths = [w for w in WIDTHS if w <= seq_len]
        features = filters * len(widths)
        self.embedding = nn.Parameter(torch.empty(vocab_size, emb_dim))
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, filters, w) for w in widths)
        self.transform = nn.Linear(features, features)
        self.gate = nn.Linear(features, features)
        self.out = nn.Linear(features, 1)

    @torch.no_grad()
    def init_(self, rng: torch.Generator) -> SequenceCNN:
        """Embedding ~ N(0, 1) (a row lookup has fan-in 1), weights ~ N(0, 1/fan_in), biases 0.

        Drawn from `rng` rather than torch's global generator so runs are reproducible.
        """
        for p in self.parameters():
            fan_in = 1 if p is self.embedding else p[0].numel()
            draw = torch.randn(p.shape, generator=rng, device=p.device) / fan_in**0.5
            p.copy_(draw if p.dim() > 1 else torch.zeros_like(p))
        return self

    def forward(self, x: Tensor) -> Tensor:
        e = (x @ self.embedding).transpose(1, 2)  # (B, E, T)
        h = torch.cat([conv(e).relu().amax(dim=2) for conv in self.convs], dim=1)  # (B, F)
        gate = torch.sigmoid(self.gate(h))  # (B, F)
        h = gate * self.transform(h).relu() + (1 - gate) * h  # (B, F): highway
        return self.out(h).squeeze(1)  # (B,)


# ----- the pieces of the algorithm -----
def soft_rollout(generator: LSTMGenerator, n: int) -> Tensor:
    """(n, T, V): the softmax at every step, feeding back the expected embedding p_t @ E."""
    x = generator.embedding(generator.start_tokens(n))  # (B, E)
    state = generator.initial_state(n)
    probs = []
    for _ in range(generator.seq_len):
        logits, state = generator.step_embedded(x, state)  # (B, V)
        p = torch.softmax(logits, dim=-1)  # (B, V)
        probs.append(p)
        x = p @ generator.embedding.weight  # (B, E): differentiable, unlike a sampled token
    return torch.stack(probs, dim=1)  # (B, T, V)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, rng: torch.Generator,
    lam: float,
) -> Tensor:
    """lam * E[(||grad_x critic(x)||_2 - 1)^2] at x = real + a (fake - real), a ~ U[0, 1] per row.

    The norm is over each sequence's whole (T, V) input, as [WGAN] (two-sided penalty).
    """
    a = torch.rand(real.shape[0], 1, 1, generator=rng, device=real.device)  # (B, 1, 1)
    x = (real + a * (fake - real)).requires_grad_(True)  # (B, T, V)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)  # (B, T, V)
    return lam * (grad.flatten(1).norm(dim=1) - 1).square().mean()


def entropy(probs: Tensor) -> Tensor:
    """Mean entropy (nats) of the rows of probs (..., V)."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1).mean()


class WGANGPTrainer:
    """One step = `critic_steps` critic updates, then one generator update on -E[critic(fake)]."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator, self.rng = cfg, generator, ctx.rng
        task = ctx.task
        self.critic = SequenceCNN(
            task.vocab_size, cfg.critic_emb_dim, cfg.critic_filters, task.seq_len
        ).to(ctx.device)
        self.critic.init_(ctx.rng)
        betas = (cfg.adam_b1, cfg.adam_b2)
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr, betas=betas)
        self.c_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=betas)
        self.batches = minibatches(task.train, cfg.batch_size, ctx.rng, ctx.device)

    def real_batch(self) -> Tensor:
        x = next(self.batches)  # (B, T)
        return F.one_hot(x, self.generator.vocab_size).float()  # (B, T, V)

    def critic_step(self) -> dict[str, float]:
        real = self.real_batch()  # (B, T, V)
        with torch.no_grad():
            fake = soft_rollout(self.generator, self.cfg.batch_size)  # (B, T, V)
        gp = gradient_penalty(self.critic, real, fake, self.rng, self.cfg.gp_lambda)
        w_dist = self.critic(real).mean() - self.critic(fake).mean()  # the critic's W estimate
        loss = -w_dist + gp
        self.c_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.c_opt.step()
        return {"train/d_loss": loss.item(), "train/gp": gp.item(), "train/w_dist": w_dist.item()}

    def generator_loss(self) -> tuple[Tensor, Tensor]:
        """(-E[critic(fake)], entropy of the per-step distributions), fake with gradient."""
        fake = soft_rollout(self.generator, self.cfg.batch_size)  # (B, T, V)
        return -self.critic(fake).mean(), entropy(fake.detach())

    def step(self) -> dict[str, float]:
        for _ in range(self.cfg.critic_steps):
            stats = self.critic_step()
        self.critic.requires_grad_(False)  # the generator step needs no critic weight gradients
        g_loss, ent = self.generator_loss()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.critic.requires_grad_(True)
        self.g_opt.step()
        return {**stats, "train/g_loss": g_loss.item(), "train/entropy": ent.item()}


METHOD = MethodSpec(
    name="wgan-gp",
    summary="WGAN-GP on softmax outputs, soft-embedding feedback through the LSTM (Gulrajani 2017)",
    config=Config,
    presets=PRESETS,
    make_trainer=WGANGPTrainer,
)
