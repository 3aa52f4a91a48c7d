"""SeqGAN: a CNN discriminator's verdict on Monte-Carlo completions, fed back by policy gradient.

After Yu et al., AAAI-17 (arXiv 1609.05473) and its code (shared/reference/seqgan-original.md).
Starting from the shared MLE pre-training, the trainer pre-trains the discriminator D
(`d_pretrain_steps` d-steps), then every `step()` is one adversarial iteration:

1. sample a batch Y ~ G and reward every token: Q(Y_{1:t-1}, y_t) is the mean of D(real) over
   `rollout_num` completions of the prefix Y_{1:t} drawn from G itself (t < T), and D(Y) at t = T;
2. one policy-gradient update, loss = -sum_{b,t} log G(y_t | Y_{1:t-1}) * Q (a sum over batch and
   time, no baseline: the original), Adam with global-norm clipping;
3. `d_steps` d-steps: fresh negatives from G against oracle training data, `d_epochs` epochs each.

The rollout policy is the current generator. The original's "delayed" copy (update_rate 0.8) never
runs: its TF graph always reads the current weights (seqgan-original.md §3.3), so there is none.

`seqgan-const` is the control of issue #21 of the original repository: the same procedure, D
trained as usual, but every reward replaced by a constant, so no rollout is made.

Two rollouts compute the same estimator. `reference_rollout_rewards` mirrors the original's
`get_reward` loop for loop (for tests and the benchmark). `fast_rollout_rewards` is the one the
trainer uses: it encodes the batch once and starts every completion from the cached LSTM state of
its prefix (`StepTables`); draws the first suffix token of all N completions from one cached
distribution; samples by a two-level inverse CDF (`sample_blocked`); scores each distinct
sequence once (D(Y) once, not N times); and scores D's convolutions through per-token lookup
tables, computing the windows that lie inside the shared prefix once per sample
(`WindowScorer`); skips the per-row max pass of the softmax when the logits are provably small;
and keeps its big temporaries in a `Workspace` the trainer holds across updates. Everything it
does is exact up to float rounding; only the random numbers differ. At the paper's configuration
about half its time is D's highway layer (1720 x 3440 multiply-adds for each of the 19,520
distinct sequences, already at the CPU's matrix-multiply peak), which no exact restructuring
avoids.

Source key: [HEAD] = LantaoYu/SeqGAN at e2b52fb (sequence_gan.py, discriminator.py, rollout.py),
[PAPER] = the AAAI-17 paper; see shared/reference/seqgan-original.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import Checkpointable, MethodSpec, TrainContext
from methods.config import CHECKS, ConfigError, hp
from methods.generator import LSTMGenerator


@dataclass(frozen=True)
class Config:
    updates: int = hp(
        200,
        "adversarial iterations: each is 1 policy-gradient update plus --seqgan.d-steps d-steps",
        source="[HEAD] TOTAL_BATCH",
        check="nonneg",
    )
    eval_every: int = hp(
        5, "updates between evaluations", source="[HEAD] every 5 iterations", check="positive"
    )
    batch_size: int = hp(
        64, "sequences per policy-gradient update", source="[HEAD] BATCH_SIZE", check="positive"
    )
    rollout_num: int = hp(
        16,
        "Monte-Carlo completions per prefix (N)",
        source="[HEAD] rollout.get_reward(sess, samples, 16, discriminator)",
        check="positive",
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
    d_emb_dim: int = hp(
        64,
        "discriminator token-embedding size",
        source="[HEAD] dis_embedding_dim",
        check="positive",
    )
    d_filter_sizes: str = hp(
        "1,2,3,4,5,6,7,8,9,10,15,20",
        "discriminator convolution widths, comma-separated (each <= sequence length)",
        source="[HEAD] dis_filter_sizes; [PAPER] Table 5",
        check="ints",
    )
    d_num_filters: str = hp(
        "100,200,200,200,200,100,100,100,100,100,160,160",
        "feature maps per convolution width, comma-separated",
        source="[HEAD] dis_num_filters",
        check="ints",
    )
    d_dropout_keep: float = hp(
        0.75,
        "keep probability of the dropout after the highway layer (training only)",
        source="[HEAD] dis_dropout_keep_prob",
        check="unit",
    )
    d_l2: float = hp(
        0.2,
        "L2 weight on the output layer only (lambda * sum(w^2)/2)",
        source="[HEAD] dis_l2_reg_lambda",
        check="nonneg",
    )
    d_lr: float = hp(
        1e-4, "discriminator Adam learning rate", source="[HEAD] discriminator.py", check="positive"
    )
    d_batch_size: int = hp(
        64, "discriminator minibatch size", source="[HEAD] dis_batch_size", check="positive"
    )
    d_samples: int = hp(
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
    rollout: str = hp(
        "fast",
        "rollout implementation: 'fast' or 'reference' (the original's loops; same estimator)",
        source="this project",
        choices=("fast", "reference"),
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
        widths, maps = self.d_filter_sizes.split(","), self.d_num_filters.split(",")
        well_formed = CHECKS["ints"][0](self.d_filter_sizes) and CHECKS["ints"][0](
            self.d_num_filters
        )
        if well_formed and len(widths) != len(maps):  # here, so the CLI rejects it before training
            raise ConfigError(
                f"d-filter-sizes {self.d_filter_sizes!r} has {len(widths)} widths but "
                f"d-num-filters {self.d_num_filters!r} has {len(maps)} counts; give one per width"
            )


@dataclass(frozen=True)
class ConstConfig(Config):
    constant_reward: float = hp(
        1.0,
        "the reward every token gets instead of the rollout's; 1.0 is what a fully fooled D "
        "gives. The gradient clip and Adam are both scale-free, so any positive value gives "
        "nearly the same updates (train/g_loss, a sum over the batch's tokens, scales with it: "
        "above ~80 it passes --bench.max-abs-loss at the paper's sizes)",
        source="control of [HEAD] issue #21, which used 2",
        check="positive",
    )


PRESETS = {
    # smoke: a tiny D, small d-steps, 4 updates of small batches (~2 s on CPU with V=5000)
    "smoke": dict(
        updates=4,
        eval_every=2,
        batch_size=16,
        rollout_num=4,
        d_emb_dim=16,
        d_filter_sizes="2,3",
        d_num_filters="8,8",
        d_samples=128,
        d_pretrain_steps=2,
        d_pretrain_epochs=1,
        d_steps=1,
        d_epochs=1,
    ),
    # quick: the paper's N=16 and batch 64; a D with a quarter of the paper's maps and half its
    # embedding (100k conv + 371k highway parameters); one light d-step per update. Measured on
    # 2 idle CPU cores, V=5000, n_train=10,000: construction 14 s + 40 updates 98 s (rollout
    # 1.4 s + d-step 1.0 s each) = 112 s; seqgan-const 59 s.
    "quick": dict(
        updates=40,
        eval_every=5,
        d_emb_dim=32,
        d_num_filters="25,50,50,50,50,25,25,25,25,25,40,40",
        d_samples=1500,
        d_pretrain_steps=10,
        d_pretrain_epochs=1,
        d_steps=1,
        d_epochs=1,
    ),
    "paper": {},
}


# ----- the discriminator -----


class Discriminator(nn.Module):
    """The paper's CNN: embedding, one conv bank per width, max-pool, highway, dropout, 2 classes.

    Class 1 is "real"; its softmax probability is the reward. The highway's transform and gate
    are one Linear(F, 2F): the original's two F x F matrices side by side.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        emb_dim: int,
        filter_sizes: tuple[int, ...],
        num_filters: tuple[int, ...],
        dropout_keep: float = 0.75,
    ) -> None:
        super().__init__()
        if len(filter_sizes) != len(num_filters) or not filter_sizes:
            raise ValueError("filter_sizes and num_filters must be non-empty and of equal length")
        if not all(1 <= w <= seq_len for w in filter_sizes) or min(num_filters) < 1:
            raise ValueError(f"filter widths must be in 1..{seq_len}, map counts >= 1")
        self.vocab_size, self.seq_len, self.dropout_keep = vocab_size, seq_len, dropout_keep
        self.filter_sizes, self.num_filters = tuple(filter_sizes), tuple(num_filters)
        n_features = sum(num_filters)
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(
            nn.Conv1d(emb_dim, n, w) for w, n in zip(filter_sizes, num_filters, strict=True)
        )
        self.highway = nn.Linear(n_features, 2 * n_features)
        self.out = nn.Linear(n_features, 2)

    def init_original_(self, generator: torch.Generator) -> Discriminator:
        """[HEAD] discriminator.py: embedding U(-1, 1); conv and output weights truncated
        N(0, 0.1^2), biases 0.1; highway matrix and bias Glorot-uniform (TF get_variable default;
        for the 1-D bias TF takes fan_in = fan_out = F); gate bias offset 0 (the call's bias=0)."""
        n = self.out.in_features
        with torch.no_grad():
            nn.init.uniform_(self.embedding.weight, -1.0, 1.0, generator=generator)
            for layer in [*self.convs, self.out]:
                nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2, generator=generator)
                nn.init.constant_(layer.bias, 0.1)
            nn.init.uniform_(
                self.highway.weight, -math.sqrt(3 / n), math.sqrt(3 / n), generator=generator
            )
            nn.init.uniform_(
                self.highway.bias, -math.sqrt(3 / n), math.sqrt(3 / n), generator=generator
            )
        return self

    def features(self, x: Tensor) -> Tensor:
        """Max-pooled ReLU conv features (B, F) of token sequences x (B, T): the plain forward."""
        e = self.embedding(x).transpose(1, 2)  # (B, E, T)
        return torch.cat([F.relu(conv(e)).amax(dim=-1) for conv in self.convs], dim=1)  # (B, F)

    def head(self, features: Tensor, dropout_rng: torch.Generator | None = None) -> Tensor:
        """Highway, dropout (only when a generator is given: training), output logits (B, 2)."""
        transform, gate = self.highway(features).chunk(2, dim=-1)  # (B, F) each
        t = torch.sigmoid(gate)
        h = t * F.relu(transform) + (1 - t) * features  # (B, F)
        if dropout_rng is not None:
            keep = torch.rand(h.shape, generator=dropout_rng, device=h.device) < self.dropout_keep
            h = h * keep / self.dropout_keep  # TF dropout: scale the kept units by 1/keep
        return self.out(h)  # (B, 2)

    def forward(self, x: Tensor, dropout_rng: torch.Generator | None = None) -> Tensor:
        return self.head(self.features(x), dropout_rng)

    def prob_real(self, x: Tensor) -> Tensor:
        """(B,) D's probability that each sequence is real, dropout off (the reward)."""
        return torch.softmax(self(x), dim=-1)[:, 1]

    def loss(
        self, x: Tensor, labels: Tensor, l2: float, rng: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Mean cross-entropy + l2 * (|W_out|^2 + |b_out|^2) / 2 with dropout; and the accuracy."""
        logits = self(x, dropout_rng=rng)  # (B, 2)
        l2_term = (self.out.weight.square().sum() + self.out.bias.square().sum()) / 2
        accuracy = (logits.argmax(dim=-1) == labels).float().mean()
        return F.cross_entropy(logits, labels) + l2 * l2_term, accuracy


class Workspace:
    """Scratch memory a trainer keeps across rollouts: each of the fast rollout's big
    temporaries (D's lookup tables, the sampling weights, the highway's output) reuses one
    allocation instead of fresh pages every call. At the paper's size that is ~400 MB of page
    faults per batch otherwise, about a tenth of the rollout's time on CPU. Only memory is
    kept: every value is recomputed on every call."""

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

    def prob_real(self, features: Tensor) -> Tensor:
        """D's probability of "real" (M,) from features (M, F): `Discriminator.head` without
        dropout, rearranged in place (t*relu(a) + (1-t)*f = f + t*(relu(a) - f))."""
        n = features.shape[1]
        z = self.workspace.get("highway", (features.shape[0], 2 * n), features)  # (M, 2F)
        torch.addmm(self.highway_b, features, self.highway_w, out=z)
        t = z[:, n:].sigmoid_()  # (M, F): the gate
        h = z[:, :n].relu_().sub_(features).mul_(t).add_(features)  # (M, F)
        return torch.sigmoid(torch.mv(h, self.out_w).add_(self.out_b))  # (M,)


# ----- rollouts: Q(Y_{1:t-1}, y_t), (B, T) -----

Rollout = Callable[[LSTMGenerator, Discriminator, Tensor, int, torch.Generator], Tensor]


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
    workspace = workspace or Workspace()
    steps = StepTables(generator)
    scorer = WindowScorer(discriminator, workspace)  # lookup tables of the current D
    states, first = steps.encode(x)
    prefix = scorer.prefix_features(x)  # per bank (T+1, B, n)
    rewards = torch.empty(batch, seq_len, device=x.device)
    per_chunk = max(1, chunk // n_rollouts)
    for lo in range(0, batch, per_chunk):
        rows = slice(lo, lo + per_chunk)
        for g in range(1, seq_len):
            h, c = states[g][0][rows], states[g][1][rows]  # (b, H): after reading x[:, :g]
            y = steps.complete(x[rows], g, first[rows, g], (h, c), n_rollouts, rng, workspace)
            shared = [p[g, rows] for p in prefix]  # (b, n) per bank
            d_real = scorer.prob_real(scorer.completion_features(y, g, shared))  # (N*b,)
            rewards[rows, g - 1] = d_real.view(n_rollouts, -1).mean(dim=0)  # own completions only
    rewards[:, -1] = scorer.prob_real(torch.cat([p[seq_len] for p in prefix], dim=1))  # D(x)
    return rewards


class StepTables:
    """The generator's sampling step, restructured exactly for many short completions.

    The input half of the LSTM gates depends only on the token: one table (V, 4H) per generator
    version replaces embedding + matmul. The read-out is scaled by log2(e), so `exp2` yields the
    unnormalised next-token probabilities (on CPU exp2 is ~3x cheaper than exp, and this pass over
    V is the sampling cost). Same gate equations and order (i, f, g, o) as `torch.nn.LSTM`.
    """

    @torch.no_grad()
    def __init__(self, generator: LSTMGenerator) -> None:
        lstm, log2e = generator.lstm, 1 / math.log(2)
        bias = lstm.bias_ih_l0 + lstm.bias_hh_l0  # (4H,)
        self.gates_in = torch.addmm(bias, generator.embedding.weight, lstm.weight_ih_l0.T)
        self.w_hh = lstm.weight_hh_l0.detach().T  # (H, 4H)
        # read-out with its bias as an extra input row: mm writes the logits in one pass (H+1, V)
        self.w_out = torch.cat([generator.out.weight.T, generator.out.bias[None]]) * log2e
        self.start, self.block = generator.start_token, _block_size(generator.vocab_size)
        # h = o * tanh(c) lies in (-1, 1)^H, so no logit exceeds this bound in magnitude. Below
        # 100 (log2 units), exp2 of the raw logits can neither overflow (even summed over V) nor
        # flush a whole row to zero: the per-row max pass is then unnecessary.
        bound = self.w_out.abs().sum(dim=0).max().item()
        self.shift_rows = bound > 100

    def step(self, tokens: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Read tokens (M,) in state h, c (M, H): the new state."""
        gates = torch.addmm(self.gates_in[tokens], h, self.w_hh)  # (M, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def weights(self, h: Tensor, out: Tensor | None = None) -> Tensor:
        """Next-token probabilities up to a per-row factor (M, V); written into `out` if given
        (a buffer reused across steps spares the allocator a fresh 20 MB per step)."""
        logits2 = torch.mm(F.pad(h, (0, 1), value=1.0), self.w_out, out=out)  # (M, V), log2 units
        if self.shift_rows:  # large logits: make each row's max 0 before exponentiating
            logits2.sub_(logits2.amax(dim=1, keepdim=True))
        return logits2.exp2_()

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


def sample_blocked(weights: Tensor, block: int, rng: torch.Generator) -> Tensor:
    """One exact inverse-CDF draw per row of unnormalised weights (M, V); returns (M,) int64.

    The CDF is taken in two levels, over blocks of `block` tokens and then inside the chosen
    block, so the pass over V is a cheap block sum instead of a sequential cumsum (the same
    distribution as `sample_categorical`, which it matches up to float rounding).
    """
    m, v = weights.shape
    blocks = weights.view(m, v // block, block)  # (M, K, S)
    block_cdf = blocks.sum(dim=-1).cumsum(dim=-1)  # (M, K)
    u = torch.rand(m, 1, generator=rng, device=weights.device) * block_cdf[:, -1:]  # (M, 1)
    b = torch.searchsorted(block_cdf, u, right=True).clamp_(max=v // block - 1)  # (M, 1)
    below = F.pad(block_cdf, (1, 0)).gather(1, b)  # (M, 1): the mass of the blocks before b
    inner = blocks.gather(1, b[:, :, None].expand(m, 1, block)).squeeze(1).cumsum(dim=-1)
    k = torch.searchsorted(inner, u - below, right=True).clamp_(max=block - 1)  # (M, 1)
    return (b * block + k).squeeze(1)


def _block_size(vocab_size: int) -> int:
    """The smallest divisor of V that is >= sqrt(V): both CDF levels stay short."""
    return next(
        d for d in range(math.isqrt(vocab_size - 1) + 1, vocab_size + 1) if vocab_size % d == 0
    )


def _sample_n(weights: Tensor, n: int, rng: torch.Generator) -> Tensor:
    """n exact inverse-CDF draws from each row of unnormalised weights (b, V): (b, n) int64."""
    cdf = weights.cumsum(dim=-1)  # (b, V)
    u = torch.rand(weights.shape[0], n, generator=rng, device=weights.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=weights.shape[1] - 1)  # (b, n)


# ----- the trainer -----


def parse_widths(cfg: Config) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The two comma-separated filter lists as int tuples, or a ConfigError naming the flag."""
    out = []
    for name in ("d_filter_sizes", "d_num_filters"):
        text = getattr(cfg, name)
        try:
            out.append(tuple(int(v) for v in text.split(",")))
        except ValueError:
            flag = f"--seqgan.{name.replace('_', '-')}"
            raise ConfigError(f"{flag}={text!r} is not valid: comma-separated ints") from None
    if len(out[0]) != len(out[1]):
        raise ConfigError("--seqgan.d-filter-sizes and --seqgan.d-num-filters differ in length")
    return out[0], out[1]


class SeqGANTrainer(Checkpointable):
    """One step = rewards for a fresh batch, one policy-gradient update, then `d_steps` d-steps."""

    def __init__(self, cfg: Config, ctx: TrainContext, generator: LSTMGenerator) -> None:
        self.cfg, self.generator = cfg, generator
        self.rng, self.device = ctx.rng, ctx.device
        sizes, maps = parse_widths(cfg)
        task = ctx.task
        if max(sizes) > task.seq_len:
            raise ConfigError(f"--seqgan.d-filter-sizes: widths must be <= T = {task.seq_len}")
        init_seed = int(torch.randint(0, 2**62, (1,), generator=ctx.rng, device=ctx.rng.device))
        self.discriminator = (
            Discriminator(
                task.vocab_size, task.seq_len, cfg.d_emb_dim, sizes, maps, cfg.d_dropout_keep
            )
            .init_original_(torch.Generator().manual_seed(init_seed))
            .to(ctx.device)
        )
        self.positives = task.train.to(ctx.device)  # (n_train, T): D's real examples
        self.g_opt = torch.optim.Adam(generator.parameters(), lr=cfg.g_lr)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.d_lr)
        rollouts: dict[str, Rollout] = {
            "fast": partial(fast_rollout_rewards, chunk=cfg.rollout_chunk, workspace=Workspace()),
            "reference": reference_rollout_rewards,
        }
        self.rollout = rollouts[cfg.rollout]
        if ctx.fresh:  # a resumed trainer gets its pre-trained D from the checkpoint
            self.train_discriminator(cfg.d_pretrain_steps, cfg.d_pretrain_epochs)

    def parts(self) -> dict:
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_opt": self.g_opt,
            "d_opt": self.d_opt,
        }

    # ----- rewards -----
    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Q (B, T) for samples x (B, T), and the rollout's perf scalars."""
        _sync(self.device)
        t0 = time.perf_counter()
        q = self.rollout(self.generator, self.discriminator, x, self.cfg.rollout_num, self.rng)
        _sync(self.device)
        seconds = time.perf_counter() - t0
        completions = completions_scored(x.shape[0], x.shape[1], self.cfg.rollout_num)
        perf = {"perf/rollout_ms": 1000 * seconds, "perf/completions_per_s": completions / seconds}
        return q, perf

    # ----- generator -----
    def update_generator(self, x: Tensor, q: Tensor) -> dict[str, float]:
        """One policy-gradient step: loss = -sum_{b,t} log G(x_t | x_<t) * Q[b, t]."""
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

    # ----- discriminator -----
    def train_discriminator(self, steps: int, epochs: int) -> dict[str, float]:
        """`steps` d-steps; each: fresh negatives vs. positives, shuffled once, `epochs` epochs."""
        losses, accs = [], []
        for _ in range(steps):
            data, labels = self._d_examples()
            order = torch.randperm(data.shape[0], generator=self.rng, device=self.rng.device)
            order = order.to(self.device)
            bs = self.cfg.d_batch_size
            for _ in range(epochs):
                for i in range(0, data.shape[0] - bs + 1, bs):  # the original drops the remainder
                    idx = order[i : i + bs]
                    loss, acc = self.discriminator.loss(
                        data[idx], labels[idx], self.cfg.d_l2, self.rng
                    )
                    self.d_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.d_opt.step()
                    losses.append(loss.detach())
                    accs.append(acc)
        if not losses:
            return {}
        return {
            "train/d_loss": torch.stack(losses).mean().item(),
            "train/d_acc": torch.stack(accs).mean().item(),
        }

    def _d_examples(self) -> tuple[Tensor, Tensor]:
        """Positives (all, or a fresh random subset) and as many fresh negatives, labelled 1/0."""
        n_pos = self.positives.shape[0]
        n = n_pos if self.cfg.d_samples == 0 else min(self.cfg.d_samples, n_pos)
        pos = self.positives
        if n < n_pos:
            pick = torch.randperm(n_pos, generator=self.rng, device=self.rng.device)[:n]
            pos = pos[pick.to(self.device)]
        neg = self.generator.sample(n, rng=self.rng)  # (n, T)
        labels = torch.cat([torch.ones(n), torch.zeros(n)]).long().to(self.device)
        return torch.cat([pos, neg]), labels  # (2n, T), (2n,)

    # ----- one adversarial iteration -----
    def step(self) -> dict[str, float]:
        x = self.generator.sample(self.cfg.batch_size, rng=self.rng)  # (B, T)
        q, perf = self.rewards(x)
        scalars = self.update_generator(x, q)
        _sync(self.device)
        t0 = time.perf_counter()
        scalars |= self.train_discriminator(self.cfg.d_steps, self.cfg.d_epochs)
        _sync(self.device)
        return scalars | perf | {"perf/d_train_ms": 1000 * (time.perf_counter() - t0)}


class ConstRewardTrainer(SeqGANTrainer):
    """seqgan-const: every reward is `constant_reward`; no rollout, no D call for rewards."""

    def rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        return torch.full(x.shape, self.cfg.constant_reward, device=x.device), {}


def completions_scored(batch: int, seq_len: int, n_rollouts: int) -> int:
    """Distinct sequences a rollout scores: N completions per prefix length 1..T-1, plus Y."""
    return (seq_len - 1) * n_rollouts * batch + batch


def _sync(device: torch.device) -> None:
    """Wall-clock timing of GPU work needs the queue drained first."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


METHOD = MethodSpec(
    name="seqgan",
    summary="SeqGAN: CNN discriminator, Monte-Carlo rollout rewards, policy gradient",
    config=Config,
    presets=PRESETS,
    make_trainer=SeqGANTrainer,
)

CONST_METHOD = MethodSpec(
    name="seqgan-const",
    summary="SeqGAN with every reward a constant (control, issue #21): no rollout, D as usual",
    config=ConstConfig,
    presets=PRESETS,
    make_trainer=ConstRewardTrainer,
)
