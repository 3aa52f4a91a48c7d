"""The Monte-Carlo rollout of the policy-gradient GANs: a reward for every token of a batch.

Q(Y_{1:t-1}, y_t), (B, T), for samples Y ~ G: the mean of D(real) over N completions of the
prefix Y_{1:t} drawn from the generator itself (t < T), and D(Y) at t = T, as [HEAD] rollout.py
`get_reward` computes it. The functions take a generator, a `Discriminator`, the samples, N and
the random generator, nothing of any method's Config (`Rollout` is their signature); the
`*_rollout_scores` variants return every completion's score under a method's own `Score` instead
(RankGAN's). `reference_rollout_rewards` is the original's loop; `fast_rollout_rewards`, which the
trainers use, is the same estimator without redundant work (exact up to float rounding; other
random numbers). How it restructures the work and where its time goes: docs/methods.md, "The
fast rollout".

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb (rollout.py); see
shared/reference/seqgan-original.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.discriminator import Discriminator
from methods.generator import LSTMGenerator, SamplingStep, sample_blocked

# ----- the rollouts: Q(Y_{1:t-1}, y_t), (B, T) -----

Rollout = Callable[[LSTMGenerator, Discriminator, Tensor, int, torch.Generator], Tensor]
# (the current D's WindowScorer, pooled conv features (M, F)) -> one score per sequence (M,);
# WindowScorer.prob_real is one
Score = Callable[["WindowScorer", Tensor], Tensor]


@torch.no_grad()
def reference_rollout_rewards(
    generator: LSTMGenerator,
    discriminator: Discriminator,
    x: Tensor,
    n_rollouts: int,
    rng: torch.Generator,
) -> Tensor:
    """The original `get_reward` ([HEAD] rollout.py), loop for loop: for each rollout i and
    prefix length g, re-encode x[:, :g] from the start token, complete it with torch.multinomial,
    call D on the batch; then D(x) once more per rollout (N identical calls). Rewards (B, T)."""
    batch, seq_len = x.shape
    rewards = torch.zeros(batch, seq_len, device=x.device)
    for _ in range(n_rollouts):
        for given in range(1, seq_len):
            y = _complete_from_start(generator, x, given, rng)  # (B, T)
            rewards[:, given - 1] += discriminator.prob_real(y)
        rewards[:, seq_len - 1] += discriminator.prob_real(x)
    return rewards / n_rollouts


@torch.no_grad()
def reference_rollout_scores(
    generator: LSTMGenerator,
    discriminator: Discriminator,
    x: Tensor,
    n_rollouts: int,
    rng: torch.Generator,
    score: Score,
) -> tuple[Tensor, Tensor]:
    """`fast_rollout_scores` by the original's loops: each completion re-encoded from the start
    token and sampled with torch.multinomial, D's features by the plain forward. A separate
    function, so `reference_rollout_rewards` (D's own softmax head) stays the original's."""
    batch, seq_len = x.shape
    scorer = WindowScorer(discriminator)  # only its head is used here, not its tables
    scores = torch.empty(n_rollouts, batch, seq_len - 1, device=x.device)
    for k in range(n_rollouts):
        for given in range(1, seq_len):
            y = _complete_from_start(generator, x, given, rng)  # (B, T)
            scores[k, :, given - 1] = score(scorer, discriminator.features(y))
    return scores, score(scorer, discriminator.features(x))  # (N, B, T-1), (B,)


def _complete_from_start(
    generator: LSTMGenerator, x: Tensor, given: int, rng: torch.Generator
) -> Tensor:
    tokens, state = generator.start_tokens(x.shape[0]), generator.initial_state(x.shape[0])
    for t in range(given):  # the prefix: LSTM cell only, no read-out ([HEAD] _g_recurrence_1)
        _, state = generator.lstm(generator.embedding(tokens).unsqueeze(1), state)
        tokens = x[:, t]
    y = x.clone()
    for t in range(given, x.shape[1]):
        logits, state = generator.step(tokens, state)  # (B, V)
        tokens = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=rng).squeeze(1)
        y[:, t] = tokens
    return y


@torch.no_grad()
def fast_rollout_rewards(
    generator: LSTMGenerator,
    discriminator: Discriminator,
    x: Tensor,
    n_rollouts: int,
    rng: torch.Generator,
    chunk: int = 1024,
    workspace: Workspace | None = None,
) -> Tensor:
    """The same estimator as `reference_rollout_rewards`, computed without redundant work.

    Samples are processed `chunk // n_rollouts` at a time (at least one); within a chunk, one
    prefix length g at a time: N completions of each sample's prefix, scored right away.
    A `workspace` kept by the caller across calls saves re-allocating the big temporaries.
    """
    batch, seq_len = x.shape
    rewards = torch.empty(batch, seq_len, device=x.device)
    scored = _scored_completions(
        generator, discriminator, x, n_rollouts, rng, WindowScorer.prob_real, chunk, workspace
    )
    for rows, g, d_real in scored:
        if g < seq_len:  # (N*b,): the N completions of each prefix in rows
            rewards[rows, g - 1] = d_real.view(n_rollouts, -1).mean(dim=0)  # own completions only
        else:
            rewards[:, -1] = d_real  # D(x)
    return rewards


@torch.no_grad()
def fast_rollout_scores(
    generator: LSTMGenerator,
    discriminator: Discriminator,
    x: Tensor,
    n_rollouts: int,
    rng: torch.Generator,
    score: Score,
    chunk: int = 1024,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """`score` of every completion, (N, B, T-1): [k, b, g-1] is the k-th completion of x[b, :g];
    and of the full samples x themselves (B,). The completions are those `fast_rollout_rewards`
    draws from the same rng state (same chunking, same order of random draws)."""
    batch, seq_len = x.shape
    scores = torch.empty(n_rollouts, batch, seq_len - 1, device=x.device)
    full = torch.empty(batch, device=x.device)
    scored = _scored_completions(
        generator, discriminator, x, n_rollouts, rng, score, chunk, workspace
    )
    for rows, g, s in scored:
        if g < seq_len:
            scores[:, rows, g - 1] = s.view(n_rollouts, -1)  # (N, b)
        else:
            full[:] = s
    return scores, full


def _scored_completions(
    generator: LSTMGenerator,
    discriminator: Discriminator,
    x: Tensor,
    n_rollouts: int,
    rng: torch.Generator,
    score: Score,
    chunk: int,
    workspace: Workspace | None,
) -> Iterator[tuple[slice, int, Tensor]]:
    """The fast rollout's loop: yields (rows, g, scores (N*b,), row i*b + j = completion i of
    x[rows][j, :g]) for each chunk of rows and g = 1..T-1, then (all rows, T, x's scores (B,)).
    Each score is consumed before the next is computed: it may view the workspace."""
    batch, seq_len = x.shape
    workspace = workspace or Workspace()
    steps = StepTables(generator)
    scorer = WindowScorer(discriminator, workspace)  # lookup tables of the current D
    states, first = steps.encode(x)
    prefix = scorer.prefix_features(x)  # per bank (T+1, B, n)
    per_chunk = max(1, chunk // n_rollouts)
    for lo in range(0, batch, per_chunk):
        rows = slice(lo, lo + per_chunk)
        for g in range(1, seq_len):
            h, c = states[g][0][rows], states[g][1][rows]  # (b, H): after reading x[:, :g]
            y = steps.complete(x[rows], g, first[rows, g], (h, c), n_rollouts, rng, workspace)
            shared = [p[g, rows] for p in prefix]  # (b, n) per bank
            yield rows, g, score(scorer, scorer.completion_features(y, g, shared))  # (N*b,)
    yield slice(None), seq_len, score(scorer, torch.cat([p[seq_len] for p in prefix], dim=1))


def completions_scored(batch: int, seq_len: int, n_rollouts: int) -> int:
    """Distinct sequences a rollout scores: N completions per prefix length 1..T-1, plus Y."""
    return (seq_len - 1) * n_rollouts * batch + batch


# ----- the fast rollout's parts -----


class Workspace:
    """Scratch memory a trainer keeps across rollouts: each of the fast rollout's big
    temporaries (D's lookup tables, the sampling weights, the highway's output) reuses one
    allocation instead of fresh pages every call (what that saves: docs/methods.md, "The fast
    rollout"). Only memory is kept: every value is recomputed on every call."""

    def __init__(self) -> None:
        self.buffers: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """An uninitialised tensor of `shape` with like's dtype and device; valid until the
        next `get` of the same name."""
        n = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = self.buffers[name] = like.new_empty(n)
        return buf[:n].view(shape)


class StepTables(SamplingStep):
    """`SamplingStep` (the generator's step as tables) with what rollouts add: teacher-forcing
    a batch once (`encode`) and completing its prefixes (`complete`)."""

    def encode(self, x: Tensor) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """Teacher-force x (B, T) once. states[t]: (h, c) (B, H) after reading the start token
        and x[:, :t]; weights (B, T, V): [:, t] ∝ G(x_t | x_<t), a completion's first token."""
        h = x.new_zeros(x.shape[0], self.w_hh.shape[0], dtype=self.w_hh.dtype)  # (B, H)
        c, tokens = h, torch.full_like(x[:, 0], self.start)
        states, weights = [], []
        for t in range(x.shape[1]):
            h, c = self.step(tokens, h, c)
            states.append((h, c))
            weights.append(self.weights(h))
            tokens = x[:, t]
        return states, torch.stack(weights, dim=1)  # (B, T, V)

    def complete(
        self,
        x: Tensor,
        g: int,
        first: Tensor,
        state: tuple[Tensor, Tensor],
        n: int,
        rng: torch.Generator,
        workspace: Workspace,
    ) -> Tensor:
        """n completions of each prefix x[:, :g] (b, T) from its state: (n*b, T), row i*b + j."""
        y = x.repeat(n, 1)  # (n*b, T); positions >= g are overwritten
        tokens = _sample_n(first, n, rng).T.reshape(-1)  # (n*b,): one CDF serves all n draws
        y[:, g] = tokens
        h, c = state[0].repeat(n, 1), state[1].repeat(n, 1)  # (n*b, H)
        buffer = workspace.get("weights", (h.shape[0], self.w_out.shape[1]), h)  # (n*b, V)
        for t in range(g + 1, x.shape[1]):
            h, c = self.step(tokens, h, c)
            tokens = sample_blocked(self.weights(h, out=buffer), self.block, rng)  # (n*b,)
            y[:, t] = tokens
        return y


def _sample_n(weights: Tensor, n: int, rng: torch.Generator) -> Tensor:
    """n exact inverse-CDF draws from each row of unnormalised weights (b, V): (b, n) int64."""
    cdf = weights.cumsum(dim=-1)  # (b, V)
    u = torch.rand(weights.shape[0], n, generator=rng, device=weights.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=weights.shape[1] - 1)  # (b, n)


class WindowScorer:
    """D's features for completions of shared prefixes, exactly, with the conv as lookup tables.

    A conv of width w over embeddings is a sum over window offsets k of (E @ W_k)[token at p+k],
    so per D version one table (w*V, n_w) turns every window into an `embedding_bag` sum (no
    multiplications; the conv bias is folded into the offset-0 rows). A completion of prefix
    Y_{1:g} shares every window lying inside the prefix with its siblings and with Y itself:
    their running max over positions is computed once per sample (`prefix_features`); per
    completion only windows touching the suffix are summed, and the two maxima are combined
    (ReLU and max commute, and every feature is >= 0, so the ReLU is the prefix max's floor 0).
    """

    @torch.no_grad()
    def __init__(self, discriminator: Discriminator, workspace: Workspace | None = None) -> None:
        d, v = discriminator, discriminator.vocab_size
        self.workspace = workspace or Workspace()
        emb = d.embedding.weight  # (V, E)
        self.widths, self.maps = d.filter_sizes, d.num_filters
        self.tables = []  # row k*V + token: that token's term at window offset k, (w*V, n_w)
        for i, (conv, w) in enumerate(zip(d.convs, self.widths, strict=True)):
            # one batched product writes all w offsets in table layout: (w, V, n) = E @ W_k
            table = self.workspace.get(f"table{i}", (w, v, conv.out_channels), emb)
            torch.matmul(emb, conv.weight.permute(2, 1, 0), out=table)  # (w, V, n)
            table[0] += conv.bias  # every window has exactly one offset-0 term
            self.tables.append(table.view(w * v, -1))
        self.offsets = [torch.arange(w, device=emb.device) * v for w in self.widths]  # (w,)
        # the head, for inference only: highway as one product, the 2-way softmax's class-1
        # probability as the sigmoid of the logit difference
        self.highway_w, self.highway_b = d.highway.weight.T, d.highway.bias  # (F, 2F), (2F,)
        self.out_w = d.out.weight[1] - d.out.weight[0]  # (F,)
        self.out_b = d.out.bias[1] - d.out.bias[0]

    def window_sums(self, i: int, x: Tensor, start: int) -> Tensor:
        """Conv outputs before ReLU (P, B, n) of bank i, windows of x (B, T) from `start` on.
        Window-major, so the max over windows is an elementwise max of P contiguous slabs."""
        w = self.widths[i]
        index = x[:, start:].unfold(1, w, 1).transpose(0, 1) + self.offsets[i]  # (P, B, w)
        sums = F.embedding_bag(index.reshape(-1, w), self.tables[i], mode="sum")  # (P*B, n)
        return sums.view(-1, x.shape[0], sums.shape[-1])  # (P, B, n)

    def prefix_features(self, x: Tensor) -> list[Tensor]:
        """Per bank, (T+1, B, n): [g] = max over windows inside x[:, :g] of ReLU(conv), or 0.
        [T] are x's own features (every window lies inside the full sequence)."""
        out = []
        for i, w in enumerate(self.widths):
            running = F.relu(self.window_sums(i, x, 0)).cummax(dim=0).values  # (T-w+1, B, n)
            out.append(F.pad(running, (0, 0, 0, 0, w, 0)))  # window p is inside g iff p + w <= g
        return out

    def completion_features(self, y: Tensor, g: int, prefix: list[Tensor]) -> Tensor:
        """Features (n*b, F) of completions y (n*b, T), row i*b + j, of prefixes of length g
        whose bank-i prefix maxima are prefix[i] (b, n_i) (from `prefix_features`)."""
        feats = self.workspace.get("features", (y.shape[0], sum(self.maps)), self.tables[0])
        b, lo = prefix[0].shape[0], 0
        for i, w in enumerate(self.widths):
            start = max(0, g - w + 1)  # the first window touching the suffix
            suffix = self.window_sums(i, y, start).amax(dim=0)  # (M, n)
            out = feats[:, lo : lo + self.maps[i]].view(-1, b, self.maps[i])  # (N, b, n)
            torch.maximum(suffix.view(-1, b, self.maps[i]), prefix[i], out=out)
            lo += self.maps[i]
        return feats

    def highway(self, features: Tensor) -> Tensor:
        """D's highway output (M, F) from features (M, F), dropout off (`Discriminator.hidden`),
        rearranged in place (t*relu(a) + (1-t)*f = f + t*(relu(a) - f)). It views the
        workspace: valid until the next call."""
        n = features.shape[1]
        z = self.workspace.get("highway", (features.shape[0], 2 * n), features)  # (M, 2F)
        torch.addmm(self.highway_b, features, self.highway_w, out=z)
        t = z[:, n:].sigmoid_()  # (M, F): the gate
        return z[:, :n].relu_().sub_(features).mul_(t).add_(features)  # (M, F)

    def prob_real(self, features: Tensor) -> Tensor:
        """D's probability of "real" (M,) from features (M, F): `Discriminator.head` without
        dropout, the 2-way softmax as a sigmoid."""
        h = self.highway(features)  # (M, F)
        return torch.sigmoid(torch.mv(h, self.out_w).add_(self.out_b))  # (M,)
