"""CoT (Cooperative Training): a mediator M learns ½(P + G); G minimises KL(G‖M) at every prefix.

After Lu, Yu et al., ICML 2019 (arXiv 1804.03782) and its code. One step, as in the code:
- the generator update, on a fresh batch of G's own samples:
  loss = Σ_{b,t,v} G(v | s_t) · (log G(v | s_t) − log M(v | s_t)) / (B·T), the mean over the
  batch's prefixes of the exact KL(G(·|s_t) ‖ M(·|s_t)) over the whole vocabulary: no rollout, no
  REINFORCE; the gradient flows through G's distributions, not through the sampled prefixes;
- one mediator update: maximum likelihood (dropout on its hidden state) on B rows drawn from one
  batch of real data and one of fresh G samples shuffled together, so M models ½(P + G).
The derivation, and where this port differs from the code: docs/methods.md, "CoT".

Source key: [CODE] = desire2020/CoT at 150a32a (cot.py, generator.py); [PAPER] = the ICML 2019
paper; see shared/reference/estimators-and-oracle.md §1.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from methods.base import Budget, Checkpointable, MethodSpec, Minibatches, TrainContext
from methods.config import hp
from methods.generator import LSTMGenerator


@dataclass(frozen=True)
class Config:
    updates: int = hp(
        200_000,
        "generator updates, each followed by `mediator_steps` mediator updates",
        source="[CODE] cot.py TOTAL_BATCH",
        check="nonneg",
    )
    eval_every: int = hp(
        100, "updates between evaluations", source="[CODE] every 100 batches", check="positive"
    )
    from_scratch: bool = hp(
        True,
        "re-initialise G (N(0, 0.1²), as the original's) instead of starting from the shared "
        "MLE pre-training",
        source="[CODE] PRE_EPOCH_NUM = 0",
    )
    batch_size: int = hp(
        64,
        "sequences per generator update, and per mediator update (drawn from a batch of real "
        "data and a batch of G samples mixed)",
        source="[CODE] BATCH_SIZE",
        check="positive",
        batch_of_train=True,
    )
    g_lr: float = hp(1e-3, "generator Adam learning rate", source="[CODE]", check="positive")
    g_clip: float = hp(
        5.0, "global gradient-norm clip of the generator", source="[CODE]", check="positive"
    )
    mediator_emb_dim: int = hp(
        64, "mediator token-embedding size", source="[CODE] EMB_DIM*2", check="positive"
    )
    mediator_hidden_dim: int = hp(
        64, "mediator LSTM hidden size", source="[CODE] HIDDEN_DIM*2", check="positive"
    )
    mediator_dropout_keep: float = hp(
        0.5,
        "keep probability of the dropout on the mediator's hidden state (its updates only)",
        source="[CODE] dropout_on",
        check="unit",
    )
    mediator_lr: float = hp(1e-3, "mediator Adam learning rate", source="[CODE]", check="positive")
    mediator_clip: float = hp(
        5.0, "global gradient-norm clip of the mediator", source="[CODE]", check="positive"
    )
    mediator_steps: int = hp(
        1, "mediator updates after every generator update", source="[CODE]", check="nonneg"
    )
    mediator_warmup: int = hp(
        0,
        "mediator updates before the first generator update, G fixed (a pre-trained G facing "
        "an untrained, near-uniform M would first be pulled towards uniform)",
        source="[CODE] none: it starts G from scratch too",
        check="nonneg",
    )


PRESETS = {
    "smoke": dict(updates=10, eval_every=5, from_scratch=False, mediator_warmup=20),
    # quick: from the shared pre-training; warm-up and 300 updates take about as long as a quick
    # seqgan or wgan-gp cell's training (docs/methods.md, "Measured costs"); the warm-up moves M
    # towards ½(P + G) before G moves (far from it still: docs/methods.md, "CoT")
    "quick": dict(updates=300, eval_every=30, from_scratch=False, mediator_warmup=600),
    # long: the original's 200,000 generator updates with quick's start
    "long": dict(eval_every=10_000, from_scratch=False, mediator_warmup=600),
    # paper: the original, from scratch (a GPU budget)
    "paper": {},
}


class Mediator(LSTMGenerator):
    """CoT's mediator: the generator's architecture (its own sizes), dropout on the hidden
    state before the read-out while it trains, with an explicit random generator."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, seq_len: int, keep: float):
        super().__init__(vocab_size, emb_dim, hidden_dim, seq_len)
        self.keep = keep

    def nll(self, x: Tensor, dropout_rng: torch.Generator) -> Tensor:
        """Mean per-token NLL of x (B, T), teacher-forced, with dropout: the training loss."""
        inputs = torch.cat([self.start_tokens(x.shape[0])[:, None], x[:, :-1]], dim=1)  # (B, T)
        hidden, _ = self.lstm(self.embedding(inputs))  # (B, T, H)
        mask = torch.rand(hidden.shape, generator=dropout_rng, device=hidden.device) < self.keep
        logits = self.out(hidden * mask / self.keep)  # (B, T, V): inverted dropout, as TF's
        return nn.functional.cross_entropy(logits.transpose(1, 2), x)


def cot_loss(g_logits: Tensor, m_logits: Tensor) -> Tensor:
    """CoT's generator loss from teacher-forced logits (B, T, V) of G and of M on G's samples:
    Σ G·(log G − log M) / (B·T), the mean over prefixes of KL(G‖M). Lower is better; M's logits
    carry no gradient."""
    logp_g = torch.log_softmax(g_logits, dim=-1)  # (B, T, V)
    logp_m = torch.log_softmax(m_logits.detach(), dim=-1)  # (B, T, V)
    return (logp_g.exp() * (logp_g - logp_m)).sum(dim=-1).mean()


class CoTTrainer(Checkpointable):
    """One step = one generator update on its own samples, then `mediator_steps` mediator
    updates on real and fresh generated data mixed."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator, self.rng = cfg, generator, ctx.rng
        task = ctx.task
        if cfg.from_scratch and ctx.fresh:  # a resumed trainer gets G from the checkpoint
            generator.init_normal_(0.1, _cpu_seeded(ctx.rng))
        self.mediator = Mediator(
            task.vocab_size,
            cfg.mediator_emb_dim,
            cfg.mediator_hidden_dim,
            task.seq_len,
            cfg.mediator_dropout_keep,
        )
        self.mediator.init_normal_(0.1, _cpu_seeded(ctx.rng)).to(ctx.device)
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr)
        self.mediator_opt = torch.optim.Adam(self.mediator.parameters(), lr=cfg.mediator_lr)
        self.real = Minibatches(task.train, cfg.batch_size, ctx.rng, ctx.device)
        if ctx.fresh:  # a resumed trainer gets its warmed-up mediator from the checkpoint
            for _ in range(cfg.mediator_warmup):
                self.update_mediator()

    def parts(self) -> dict:
        """What a checkpoint holds (the rng is the benchmark's)."""
        return {
            "generator": self.generator,
            "mediator": self.mediator,
            "g_opt": self.g_opt,
            "mediator_opt": self.mediator_opt,
            "real": self.real,
        }

    def step(self) -> dict[str, float]:
        """One generator update, then `mediator_steps` mediator updates (their mean NLL)."""
        scalars = self.update_generator()
        nlls = [self.update_mediator() for _ in range(self.cfg.mediator_steps)]
        if nlls:
            scalars["train/mediator_nll"] = sum(nlls) / len(nlls)
        return scalars

    def update_generator(self) -> dict[str, float]:
        """One Adam step of G on `cot_loss` over a fresh batch of its own samples."""
        x = self.generator.sample(self.cfg.batch_size, rng=self.rng)  # (B, T)
        with torch.no_grad():
            m_logits = self.mediator(x)  # (B, T, V), no dropout: as [CODE]'s get_reward
        g_logits = self.generator(x)  # (B, T, V)
        loss = cot_loss(g_logits, m_logits)
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.g_clip)
        self.g_opt.step()
        return {"train/g_loss": loss.item(), "train/grad_norm": grad_norm.item()}

    def update_mediator(self) -> float:
        """One MLE step of M on B rows of [real batch; fresh G batch] shuffled; its NLL."""
        b = self.cfg.batch_size
        real = next(self.real)  # (B, T)
        fake = self.generator.sample(b, rng=self.rng)  # (B, T)
        order = torch.randperm(2 * b, generator=self.rng, device=self.rng.device)[:b]
        x = torch.cat([real, fake])[order.to(real.device)]  # (B, T): [CODE] trains on one slice
        loss = self.mediator.nll(x, self.rng)
        self.mediator_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.mediator.parameters(), self.cfg.mediator_clip)
        self.mediator_opt.step()
        return loss.item()


def _cpu_seeded(rng: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from `rng`: init_normal_ draws on the CPU."""
    seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device))
    return torch.Generator().manual_seed(seed)


def mediator_parameters(cfg: Config, vocab_size: int) -> int:
    """The mediator's parameters: embedding, LSTM (two bias vectors, as torch's), read-out."""
    e, h, v = cfg.mediator_emb_dim, cfg.mediator_hidden_dim, vocab_size
    return v * e + 4 * h * (e + h + 2) + h * v + v


def budget(cfg: Config, vocab_size: int, seq_len: int, n_train: int) -> Budget:
    """Generator updates, mediator updates per generator update and the mediator's size; the
    warm-up's `mediator_warmup` updates are not counted (as SeqGAN's D pre-training is not)."""
    return Budget(cfg.updates, cfg.mediator_steps, mediator_parameters(cfg, vocab_size))


METHOD = MethodSpec(
    name="cot",
    summary="CoT: a mediator LM of ½(P + G); G minimises the exact per-prefix KL(G‖M)",
    config=Config,
    presets=PRESETS,
    make_trainer=CoTTrainer,
    budget=budget,
)
