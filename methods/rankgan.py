"""RankGAN: a ranker's relative score of each completion among the batch's, fed back by policy
gradient.

After Lin, Li, He, Zhang and Sun, NeurIPS 2017 ([PAPER], arXiv 1705.11001), following by
default its official code, [CODE] = cookielee77/RankGan-NIPS2017 (shared/reference/pg-family.md
§2). The procedure is methods/pg.py's `RolloutTrainer`; RankGAN's own are the ranker (SeqGAN's
CNN without its class layer, scoring a sentence by the summed cosine of its feature with those of
a reference set of real sentences), its loss (log softmax of the scores over a mixed minibatch)
and the reward (the softmax of the completions' scores over the batch, averaged over rollouts).
The details, the choices beyond [CODE] and what is not built: docs/methods.md, "RankGAN".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import MethodSpec
from methods.config import ConfigError, hp
from methods.discriminator import Discriminator
from methods.generator import LSTMGenerator
from methods.pg import ROLLOUT_PRESETS, RolloutConfig, RolloutTrainer, budget
from methods.rollout import (
    WindowScorer,
    Workspace,
    fast_rollout_scores,
    reference_rollout_scores,
)

COSINE_EPS = 1e-12  # tf.nn.l2_normalize's epsilon: a zero feature has cosine 0 with anything


@dataclass(frozen=True)
class Config(RolloutConfig):
    """RankGAN's hyperparameters: the rollout and policy-gradient fields of methods/pg.py (the
    discriminator_* fields describe the ranker network, d_* its steps) and the ranker's own."""

    discriminator_l2: float = hp(
        0.0,
        "must stay 0: the ranker has no class layer, the only layer SeqGAN's L2 applies to",
        source="[CODE] ranker.py has no L2 term",
        check="nonneg",
    )
    gamma: float = hp(
        1.0,
        "temperature of the rank softmax: score = gamma * sum over the reference set of cosines",
        source="[CODE] opt.py gamma",
        check="positive",
    )
    reference_size: int = hp(
        16,
        "real reference sentences per ranker minibatch and per rollout, drawn with replacement",
        source="[CODE] main.py --ref_size; dataloader.py get_ref",
        check="positive",
    )
    reward: str = hp(
        "rank",
        "'rank': the rank score among the batch's completions, mean over rollouts; 'log-rank': "
        "the mean of its log (the paper's log R, over [CODE]'s comparison set)",
        source="[CODE] rollout.py get_reward; 'log-rank' after [PAPER] Eq. 5-6",
        choices=("rank", "log-rank"),
    )
    uniform_baseline: bool = hp(
        False,
        "subtract the reward of a ranker that scores all alike (1/B; -log B for log-rank): a "
        "constant, unbiased baseline",
        source="[CODE] has none; a constant baseline leaves the gradient unbiased "
        "(docs/methods.md, RankGAN)",
    )
    discriminator_init: str = hp(
        "rankgan",
        "ranker initialisation: 'rankgan' = embedding and convolutions U(-0.1, 0.1), highway "
        "Glorot-uniform; 'seqgan' = SeqGAN's D (methods/discriminator.py init_original_)",
        source="[CODE] ranker.py build_ranker (random_uniform_init on embedding and conv only; "
        "the highway's get_variable takes TF's Glorot default)",
        choices=("rankgan", "seqgan"),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.discriminator_l2 != 0:  # a value that would silently do nothing
            raise ConfigError(
                f"--rankgan.discriminator-l2={self.discriminator_l2!r} is not valid: must be 0 "
                "(the ranker has no class layer to regularise)"
            )


# Budgets. smoke and quick are SeqGAN's (methods.pg.ROLLOUT_PRESETS), so the two methods are
# compared at the same cost: generator batch 64, quick's quarter-size network, one light d-step.
# paper follows [CODE] main.py/opt.py, not SeqGAN's code: gen_batch_size 32, epoch 200 with
# g_step 1, r_step 5 ranker steps of one pass each over all 10k real + 10k fresh fakes
# (rank_batch_size 64), pre_r_epoch 50 rounds of 3 passes, rank_lr 1e-4, rollout_num 16, ad_g_lr
# 0.01, dropout keep 0.75, the full ranker CNN (emb 64, SeqGAN's 12 widths and 1,720 maps): the
# fields not listed equal pg.py's defaults. [CODE]'s 120 MLE epochs are the benchmark's shared
# pre-training instead.
PRESETS = ROLLOUT_PRESETS | {
    "paper": ROLLOUT_PRESETS["paper"] | dict(updates=200, batch_size=32, d_steps=5, d_epochs=1)
}


# ----- the ranker's score and loss -----


def reference_direction(reference: Tensor) -> Tensor:
    """(F,) the sum of the reference features' unit vectors, from reference features (R, F):
    sum_j cos(h, r_j) = (h / |h|) . sum_j (r_j / |r_j|)."""
    return F.normalize(reference, dim=1, eps=COSINE_EPS).sum(dim=0)  # (F,)


def rank_scores(features: Tensor, direction: Tensor, gamma: float) -> Tensor:
    """gamma * sum_j cos(features_i, r_j) (M,) from ranker features (M, F) and
    `reference_direction` (F,); one product per sequence instead of R."""
    norms = torch.linalg.vector_norm(features, dim=1).clamp_min(COSINE_EPS)  # (M,)
    return gamma * torch.mv(features, direction) / norms  # (M,)


def ranker_loss(
    ranker: Discriminator,
    x: Tensor,
    real: Tensor,
    reference: Tensor,
    gamma: float,
    rng: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """[CODE] rank_loss on a minibatch x (B, T) whose rows `real` (B,) bool are real, against
    reference sentences (R, T): -(mean_real log_rank - mean_fake log_rank), log_rank the log
    softmax over the minibatch; dropout (on x and the references alike) when `rng` is given.
    Also the ranking AUC: the fraction of (real, fake) pairs the ranker orders right.

    A minibatch without one class (possible with tiny minibatches only) keeps the other class's
    term alone; [CODE] divides by zero there."""
    feats = ranker.hidden(ranker.features(torch.cat([x, reference])), rng)  # (B+R, F)
    scores = rank_scores(feats[: len(x)], reference_direction(feats[len(x) :]), gamma)  # (B,)
    log_rank = torch.log_softmax(scores, dim=0)  # (B,)
    loss = -(_mean_or_zero(log_rank[real]) - _mean_or_zero(log_rank[~real]))
    with torch.no_grad():
        wins = (scores[real, None] > scores[None, ~real]).float()  # (B_real, B_fake)
        ties = (scores[real, None] == scores[None, ~real]).float()
        auc = (wins + ties / 2).mean() if wins.numel() else torch.tensor(0.5)
    return loss, auc


def _mean_or_zero(values: Tensor) -> Tensor:
    return values.mean() if values.numel() else values.sum()  # sum() of nothing: 0, in the graph


# ----- the generator's reward -----


def rank_rewards(scores: Tensor, full: Tensor, reward: str, uniform_baseline: bool) -> Tensor:
    """Rewards (B, T) from the completions' scores (N, B, T-1) and the samples' own (B,): at
    (b, t < T) the mean over rollouts k of the softmax over the B completions at (k, t); at
    t = T the softmax over the samples. 'log-rank': the log of each softmax instead."""
    batch = full.shape[0]
    if reward == "rank":
        completions = torch.softmax(scores, dim=1).mean(dim=0)  # (B, T-1)
        last = torch.softmax(full, dim=0)  # (B,)
        uniform = 1 / batch
    else:
        completions = torch.log_softmax(scores, dim=1).mean(dim=0)  # (B, T-1)
        last = torch.log_softmax(full, dim=0)  # (B,)
        uniform = -math.log(batch)
    q = torch.cat([completions, last[:, None]], dim=1)  # (B, T)
    return q - uniform if uniform_baseline else q


# ----- the trainer -----


class RankGANTrainer(RolloutTrainer):
    """One step = rank rewards for a fresh batch, one policy-gradient update, ranker steps.
    `self.discriminator` is the ranker (the name pg.py's shared parts and checkpoints use)."""

    method = "rankgan"  # the CLI prefix its config errors name

    def setup(self, cfg: Config) -> None:
        if cfg.discriminator_init == "rankgan":
            seed = int(torch.randint(0, 2**62, (1,), generator=self.rng, device=self.rng.device))
            init_ranker_(self.discriminator, torch.Generator().manual_seed(seed))
        scored = {
            "fast": partial(fast_rollout_scores, chunk=cfg.rollout_chunk, workspace=Workspace()),
            "reference": reference_rollout_scores,
        }[cfg.rollout]
        # RolloutTrainer.rollout_rewards times `self.rollout`: the whole reward, as SeqGAN's
        self.rollout = partial(self._rank_rollout, scored)

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        return self.rollout_rewards(x)

    @torch.no_grad()
    def _rank_rollout(
        self,
        scored,
        generator: LSTMGenerator,
        ranker: Discriminator,
        x: Tensor,
        n_rollouts: int,
        rng: torch.Generator,
    ) -> Tensor:
        """The reward (B, T) of samples x (B, T): one fresh reference set, dropout off."""
        reference = self._reference_set(rng)  # (R, T)
        direction = reference_direction(ranker.hidden(ranker.features(reference)))  # (F,)

        def score(scorer: WindowScorer, features: Tensor) -> Tensor:
            return rank_scores(scorer.highway(features), direction, self.cfg.gamma)  # (M,)

        scores, full = scored(generator, ranker, x, n_rollouts, rng, score)  # (N, B, T-1), (B,)
        return rank_rewards(scores, full, self.cfg.reward, self.cfg.uniform_baseline)

    def _reference_set(self, rng: torch.Generator) -> Tensor:
        """`reference_size` real sentences (R, T), drawn with replacement ([CODE] get_ref)."""
        n = self.positives.shape[0]
        pick = torch.randint(0, n, (self.cfg.reference_size,), generator=rng, device=rng.device)
        return self.positives[pick.to(self.device)]

    def heldout_check(self) -> dict[str, float]:
        """None: the ranker's class layer is never trained, so its "accuracy" means nothing."""
        return {}

    def train_discriminator(self, steps: int, epochs: int) -> dict[str, float]:
        """`steps` ranker steps; each: fresh fakes vs. real sentences, shuffled once into mixed
        minibatches, `epochs` passes, one fresh reference set per minibatch ([CODE] main.py)."""
        losses, aucs = [], []
        bs = self.cfg.discriminator_batch_size
        for _ in range(steps):
            data, labels = self._discriminator_examples()  # (2n, T), (2n,): 1 = real
            order = torch.randperm(data.shape[0], generator=self.rng, device=self.rng.device)
            order = order.to(self.device)
            for _ in range(epochs):
                for i in range(0, data.shape[0] - bs + 1, bs):  # [CODE] drops the remainder
                    idx = order[i : i + bs]
                    reference = self._reference_set(self.rng)  # (R, T)
                    loss, auc = ranker_loss(
                        self.discriminator,
                        data[idx],
                        labels[idx] == 1,
                        reference,
                        self.cfg.gamma,
                        self.rng,
                    )
                    self.discriminator_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.discriminator_opt.step()
                    losses.append(loss.detach())
                    aucs.append(auc)
        if not losses:
            return {}
        return {
            "train/d_loss": torch.stack(losses).mean().item(),
            "train/ranker_auc": torch.stack(aucs).mean().item(),
        }


def init_ranker_(ranker: Discriminator, generator: torch.Generator) -> Discriminator:
    """[CODE] build_ranker: embedding, conv weights and biases U(-0.1, 0.1); the highway keeps
    init_original_'s Glorot-uniform, TF's get_variable default that [CODE]'s highway gets too.
    The unused class layer keeps whatever it had."""
    with torch.no_grad():
        for p in [ranker.embedding.weight, *ranker.convs.parameters()]:
            nn.init.uniform_(p, -0.1, 0.1, generator=generator)
    return ranker


METHOD = MethodSpec(
    name="rankgan",
    summary="RankGAN: a CNN ranker's softmax over the batch of cosine-to-reference scores, "
    "rollout rewards, policy gradient",
    config=Config,
    presets=PRESETS,
    make_trainer=RankGANTrainer,
    budget=budget,  # the ranker is trained like SeqGAN's D (its unused class layer counted)
)
