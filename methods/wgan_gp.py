"""WGAN-GP on softmax outputs: the shared LSTM unrolled with soft feedback, a Wasserstein critic.

After Gulrajani et al. 2017, ported to the autoregressive generator
(shared/reference/relaxation-gans.md §1.4): the generator emits its softmax p_t at every step and
feeds back a differentiable input chosen by `Config.feedback` (also where a fake batch gets its
randomness: the shared LSTM has no noise input); the critic (methods/critic.py) compares those
softmax rows with one-hot real rows, kept 1-Lipschitz by a gradient penalty. Why, and what the
feedback choices mean: docs/methods.md, "WGAN-GP on softmax outputs".

Source key: [WGAN] = igul222/improved_wgan_training gan_language.py at fa66c57 and the WGAN-GP
paper (arXiv 1704.00028); [RELGAN] = weilinie/RelGAN at 7402725; [KHL] = Kusner &
Hernandez-Lobato 2016, "GANs for sequences of discrete elements with the Gumbel-softmax
distribution" (arXiv 1611.04051; known from its abstract); see shared/reference/relaxation-gans.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from methods.base import (
    Budget,
    Checkpointable,
    MethodSpec,
    Minibatches,
    TrainContext,
    parameter_count,
)
from methods.config import check_widths, hp
from methods.critic import SequenceCNN, gumbel_noise
from methods.generator import LSTMGenerator, sample_categorical


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
        100,
        "updates between evaluations",
        source="[WGAN] logs n-gram JSD every 100 iterations",
        check="positive",
    )
    batch_size: int = hp(
        64, "sequences per batch (real and fake)", source="[WGAN] BATCH_SIZE", check="positive"
    )
    critic_steps: int = hp(
        10,
        "critic updates per generator update, each on fresh real and fake batches",
        source="[WGAN] CRITIC_ITERS ('5 should work fine as well')",
        check="positive",
    )
    gp_lambda: float = hp(10.0, "gradient-penalty weight", source="[WGAN] LAMBDA", check="nonneg")
    g_lr: float = hp(1e-4, "generator Adam learning rate", source="[WGAN]", check="positive")
    critic_lr: float = hp(1e-4, "critic Adam learning rate", source="[WGAN]", check="positive")
    adam_b1: float = hp(
        0.5, "Adam beta1 (generator and critic)", source="[WGAN] language script", check="nonneg"
    )
    adam_b2: float = hp(0.9, "Adam beta2 (generator and critic)", source="[WGAN]", check="unit")
    critic_emb_dim: int = hp(
        512,
        "width of the critic's linear embedding of the V-dim rows",
        source="[WGAN] DIM=512, the width of its k=1 input convolution",
        check="positive",
    )
    critic_num_filters: int = hp(
        128,
        "critic convolution maps per filter width",
        source="4 x 128 = [WGAN] DIM=512 features; the widths are [RELGAN]'s",
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
    feedback: str = hp(
        "sampled-first",
        "what the generator feeds itself at the next step, i.e. where a fake batch gets its "
        "randomness (the shared LSTM has no noise input z, unlike the recipe). 'soft': p_t @ E at "
        "every step, the recipe's feedback without its z: deterministic, so every fake row of a "
        "batch is the same sequence of distributions (degenerate; kept for comparison). "
        "'sampled-first': the first token is drawn exactly from the generator's first-step "
        "distribution p_1 and its embedding fed back, then p_t @ E: rows differ by a sample from "
        "the model, which plays the part of z, and the rest stays differentiable (the critic still "
        "sees p_1, so the first step gets gradient too). 'gumbel-soft': softmax((o_t + g_t) / "
        "tau) @ E with Gumbel noise g_t at every step ([KHL]'s Gumbel-softmax feedback; the "
        "critic still sees p_t = softmax(o_t), not the noisy vector)",
        source="the usual port of [WGAN] to an LSTM starts from a noise z (h_0 = f(z)), which "
        "the shared generator lacks, and [KHL]; 'sampled-first' is the smallest change that "
        "makes fake rows differ without a noise input (docs/methods.md, WGAN-GP on softmax "
        "outputs)",
        choices=("soft", "sampled-first", "gumbel-soft"),
    )
    tau_feedback: float = hp(
        1.0,
        "temperature tau of the fed-back Gumbel-softmax under --wgan-gp.feedback=gumbel-soft "
        "(unused otherwise): large tau flattens the fed-back vector, small tau approaches a hard "
        "Gumbel-max sample (exact but with vanishing gradient)",
        source="1 keeps the fed-back vector a noisy version of p_t itself; [KHL] anneal tau "
        "(their schedule is not verified here)",
        check="positive",
    )


FILTER_SIZES_FLAG = "--wgan-gp.critic-filter-sizes"

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
    # 5 critic steps as [WGAN] allows, a 64x4x64
    # critic; 10 evaluations
    "quick": dict(
        updates=160, eval_every=16, critic_steps=5, critic_emb_dim=64, critic_num_filters=64
    ),
    # long: the paper preset's 3,000 generator updates with quick's critic (CPU-sized)
    "long": dict(eval_every=200, critic_steps=5, critic_emb_dim=64, critic_num_filters=64),
    "paper": {},
}


# ----- the pieces of the algorithm -----
# The next step's input embedding (B, E) from step t's logits (B, V) and softmax p (B, V); one
# function per `Config.feedback` choice, with a common signature.
def soft_feedback(
    gen: LSTMGenerator, t: int, logits: Tensor, p: Tensor, rng: torch.Generator, tau: float
) -> Tensor:
    return p @ gen.embedding.weight  # (B, E): the expected embedding


def sampled_first_feedback(
    gen: LSTMGenerator, t: int, logits: Tensor, p: Tensor, rng: torch.Generator, tau: float
) -> Tensor:
    if t > 0:
        return p @ gen.embedding.weight  # (B, E)
    return gen.embedding(sample_categorical(p.detach(), rng))  # (B, E): an exact draw from p_1


def gumbel_soft_feedback(
    gen: LSTMGenerator, t: int, logits: Tensor, p: Tensor, rng: torch.Generator, tau: float
) -> Tensor:
    g = gumbel_noise(logits.shape, rng, logits.device)  # (B, V)
    return torch.softmax((logits + g) / tau, dim=-1) @ gen.embedding.weight  # (B, E)


FEEDBACK = {
    "soft": soft_feedback,
    "sampled-first": sampled_first_feedback,
    "gumbel-soft": gumbel_soft_feedback,
}


def soft_rollout(
    generator: LSTMGenerator, n: int, rng: torch.Generator, feedback: str, tau: float = 1.0
) -> Tensor:
    """(n, T, V): the softmax p_t at every step; the next input is chosen by FEEDBACK[feedback]."""
    feed = FEEDBACK[feedback]
    x = generator.embedding(generator.start_tokens(n))  # (B, E)
    state = generator.initial_state(n)
    probs = []
    for t in range(generator.seq_len):
        logits, state = generator.step_embedded(x, state)  # (B, V)
        p = torch.softmax(logits, dim=-1)  # (B, V)
        probs.append(p)
        x = feed(generator, t, logits, p, rng, tau)  # (B, E): differentiable in p or logits
    return torch.stack(probs, dim=1)  # (B, T, V)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    rng: torch.Generator,
    lam: float,
    metric: Tensor | None = None,
) -> Tensor:
    """lam * E[(||grad_x critic(x)|| - 1)^2] at x = real + a (fake - real), a ~ U[0, 1] per row.

    The norm is over each sequence's whole (T, D) input, as [WGAN] (two-sided penalty). With a
    `metric` M (D, D) the squared norm is sum_t g_t M g_t^T: for critic(x) = score(x W^T) the
    input gradient is (grad_e score) W, so penalising `score` on embedded rows with M = W W^T is
    the same penalty as on the (B, T, V) rows (interpolation commutes with the linear map),
    without any (B, T, V) tensor.
    """
    a = torch.rand(real.shape[0], 1, 1, generator=rng, device=real.device)  # (B, 1, 1)
    x = (real + a * (fake - real)).requires_grad_(True)  # (B, T, D)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)  # (B, T, D)
    if metric is None:
        sq_norm = grad.square().sum(dim=(1, 2))  # (B,)
    else:
        sq_norm = torch.einsum("btd,de,bte->b", grad, metric, grad)  # (B,)
    return lam * (sq_norm.clamp_min(1e-12).sqrt() - 1).square().mean()


def entropy(probs: Tensor) -> Tensor:
    """Mean entropy (nats) of the rows of probs (..., V)."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1).mean()


class WGANGPTrainer(Checkpointable):
    """One step = `critic_steps` critic updates, then one generator update on -E[critic(fake)]."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator, self.rng = cfg, generator, ctx.rng
        task = ctx.task  # the widths are checked against T here: the oracle fixes T, not the CLI
        sizes = check_widths(cfg.critic_filter_sizes, task.seq_len, FILTER_SIZES_FLAG)
        self.critic = SequenceCNN(
            task.vocab_size, cfg.critic_emb_dim, cfg.critic_num_filters, sizes
        ).to(ctx.device)
        self.critic.init_(ctx.rng)
        betas = (cfg.adam_b1, cfg.adam_b2)
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr, betas=betas)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=betas)
        self.batches = Minibatches(task.train, cfg.batch_size, ctx.rng, ctx.device)

    def parts(self) -> dict:
        return {
            "generator": self.generator,
            "critic": self.critic,
            "g_opt": self.g_opt,
            "critic_opt": self.critic_opt,
            "batches": self.batches,
        }

    def rollout(self) -> Tensor:
        """A fake batch (B, T, V) of softmax rows, with the configured feedback."""
        cfg = self.cfg
        return soft_rollout(
            self.generator, cfg.batch_size, self.rng, cfg.feedback, cfg.tau_feedback
        )

    def critic_step(self) -> dict[str, float]:
        critic = self.critic
        real = critic.embed_tokens(next(self.batches))  # (B, T, E): one-hot rows, as a lookup
        with torch.no_grad():
            fake = self.rollout()  # (B, T, V)
        fake = critic.embed(fake)  # (B, T, E)
        w = critic.embedding.weight  # (E, V)
        gp = gradient_penalty(critic.score, real, fake, self.rng, self.cfg.gp_lambda, w @ w.T)
        w_dist = critic.score(real).mean() - critic.score(fake).mean()  # the critic's W estimate
        loss = -w_dist + gp
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return {"train/d_loss": loss.item(), "train/gp": gp.item(), "train/w_dist": w_dist.item()}

    def generator_loss(self) -> tuple[Tensor, Tensor]:
        """(-E[critic(fake)], entropy of the per-step distributions), fake with gradient."""
        fake = self.rollout()  # (B, T, V)
        return -self.critic(fake).mean(), entropy(fake.detach())

    def step(self) -> dict[str, float]:
        critic_stats = [self.critic_step() for _ in range(self.cfg.critic_steps)]
        # train/d_loss is the mean over the step's critic updates, as in every method; gp and
        # w_dist are the last update's
        losses = [s["train/d_loss"] for s in critic_stats]
        stats = critic_stats[-1] | {"train/d_loss": sum(losses) / len(losses)}
        self.critic.requires_grad_(False)  # the generator step needs no critic weight gradients
        g_loss, ent = self.generator_loss()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.critic.requires_grad_(True)
        self.g_opt.step()
        return {**stats, "train/g_loss": g_loss.item(), "train/entropy": ent.item()}


def budget(cfg: Config, vocab_size: int, seq_len: int, n_train: int) -> Budget:
    """`critic_steps` critic updates per generator update; the critic's size."""
    sizes = check_widths(cfg.critic_filter_sizes, seq_len, FILTER_SIZES_FLAG)
    critic = SequenceCNN(vocab_size, cfg.critic_emb_dim, cfg.critic_num_filters, sizes)
    return Budget(cfg.updates, cfg.critic_steps, parameter_count(critic))


METHOD = MethodSpec(
    name="wgan-gp",
    summary="WGAN-GP on softmax outputs, soft-embedding feedback through the LSTM (Gulrajani 2017)",
    config=Config,
    presets=PRESETS,
    budget=budget,
    make_trainer=WGANGPTrainer,
)
