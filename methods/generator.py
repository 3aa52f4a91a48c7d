"""The one LSTM generator every method trains, and the small interface metrics rely on.

The architecture is the SeqGAN paper's (and its oracle's): a single-layer LSTM with a 32-d
embedding and 32 hidden units, a linear read-out to the vocabulary, zero initial state, and the
embedding of start token 0 as the first input (the start token is never part of the output).
The gate equations of the original hand-written LSTM are those of a standard LSTM without
peepholes, so `torch.nn.LSTM` computes them exactly (its second bias is kept at zero).

Metrics and reports use only `SequenceModel`: `sample_portable`, `log_prob`, `initial_state`,
`step`. The task data and every evaluation draw come from `sample_portable`, a float64 pass whose
tokens do not depend on the CPU's instruction set; training draws with the faster float32 `sample`.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, Tensor]  # (h, c), each (1, B, H)


class SequenceModel(Protocol):
    """Anything that generates fixed-length token sequences and scores them exactly."""

    vocab_size: int
    seq_len: int

    def sample_portable(self, n: int, *, rng: torch.Generator, temperature: float = 1.0) -> Tensor:
        """(n, T) int64 token ids, drawn autoregressively at the given temperature from the CPU
        generator `rng`, the same tokens on every CPU and device (float64, `LSTMGenerator`)."""
        ...

    def log_prob(self, x: Tensor, *, temperature: float = 1.0) -> Tensor:
        """(n,) float: exact log-likelihood of each sequence in x (n, T), summed over tokens."""
        ...


def sample_categorical(probs: Tensor, rng: torch.Generator) -> Tensor:
    """Exact draw from each row of `probs` (B, V) by inverse-CDF sampling; returns (B,) int64.

    One uniform per row and a binary search: the same distribution as `torch.multinomial`, and
    much faster on CPU (docs/methods.md, "Measured costs").
    """
    cdf = probs.cumsum(dim=-1)  # (B, V)
    u = torch.rand(probs.shape[0], 1, generator=rng, device=probs.device, dtype=probs.dtype)
    u = u * cdf[:, -1:]  # (B, 1): scale by the row total so rounding in cumsum cannot overflow
    idx = torch.searchsorted(cdf, u, right=True).squeeze(1)  # (B,)
    return idx.clamp_(max=probs.shape[1] - 1)


def sample_blocked(weights: Tensor, block: int, rng: torch.Generator) -> Tensor:
    """One exact inverse-CDF draw per row of unnormalised weights (M, V); returns (M,) int64.

    The CDF is taken in two levels, over blocks of `block` tokens and then inside the chosen
    block, so the pass over V is a cheap block sum instead of a sequential cumsum (the same
    distribution as `sample_categorical`, which it matches up to float rounding). One uniform per
    row, of the weights' dtype.
    """
    m, v = weights.shape
    blocks = weights.view(m, v // block, block)  # (M, K, S)
    block_cdf = blocks.sum(dim=-1).cumsum(dim=-1)  # (M, K)
    u = torch.rand(m, 1, generator=rng, device=weights.device, dtype=weights.dtype)  # (M, 1)
    u = u * block_cdf[:, -1:]  # (M, 1)
    b = torch.searchsorted(block_cdf, u, right=True).clamp_(max=v // block - 1)  # (M, 1)
    below = F.pad(block_cdf, (1, 0)).gather(1, b)  # (M, 1): the mass of the blocks before b
    inner = blocks.gather(1, b[:, :, None].expand(m, 1, block)).squeeze(1).cumsum(dim=-1)
    k = torch.searchsorted(inner, u - below, right=True).clamp_(max=block - 1)  # (M, 1)
    return (b * block + k).squeeze(1)


def block_size(vocab_size: int) -> int:
    """The smallest divisor of V that is >= sqrt(V): both CDF levels stay short."""
    return next(
        d for d in range(math.isqrt(vocab_size - 1) + 1, vocab_size + 1) if vocab_size % d == 0
    )


# log_prob's default chunk: (B, T, V) float32 temporaries of at most 16 MiB, under the 32 MiB
# below which bench/cells/allocator.py keeps freed blocks on the heap for reuse (V = 5000,
# T = 20: 41 sequences)
LOG_PROB_CHUNK_BYTES = 16 * 2**20


class LSTMGenerator(nn.Module):
    """The shared generator (and the oracle's architecture): embedding -> LSTM -> linear."""

    def __init__(
        self,
        vocab_size: int = 5000,
        emb_dim: int = 32,
        hidden_dim: int = 32,
        seq_len: int = 20,
        start_token: int = 0,
    ) -> None:
        super().__init__()
        self.vocab_size, self.seq_len, self.start_token = vocab_size, seq_len, start_token
        self.emb_dim, self.hidden_dim = emb_dim, hidden_dim
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def init_normal_(self, std: float, generator: torch.Generator) -> LSTMGenerator:
        """All weights and biases ~ N(0, std^2); LSTM bias_hh zero (one bias, as the paper).

        std=0.1 is the SeqGAN generator's initialisation, std=1 the oracle's.
        """
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name == "lstm.bias_hh_l0":
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * std)
        return self

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    # ----- the step interface: what rollouts and soft feedback build on -----
    def initial_state(self, n: int) -> State:
        h = torch.zeros(1, n, self.hidden_dim, device=self.device)  # (1, B, H)
        return h, h.clone()

    def start_tokens(self, n: int) -> Tensor:
        return torch.full((n,), self.start_token, dtype=torch.long, device=self.device)  # (B,)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One autoregressive step: input tokens (B,) -> next-token logits (B, V), new state."""
        return self.step_embedded(self.embedding(tokens), state)

    def step_embedded(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Like `step` but from input embeddings (B, E): soft feedback feeds expected embeddings."""
        out, state = self.lstm(x.unsqueeze(1), state)  # (B, 1, H)
        return self.out(out.squeeze(1)), state  # (B, V)

    # ----- teacher forcing -----
    def forward(self, x: Tensor) -> Tensor:
        """Teacher-forced next-token logits (B, T, V) for sequences x (B, T)."""
        inputs = torch.cat([self.start_tokens(x.shape[0])[:, None], x[:, :-1]], dim=1)  # (B, T)
        hidden, _ = self.lstm(self.embedding(inputs))  # (B, T, H)
        return self.out(hidden)  # (B, T, V)

    def token_log_probs(self, x: Tensor, *, temperature: float = 1.0) -> Tensor:
        """(B, T): log G(x_t | x_<t) at the given temperature (logits divided by it)."""
        logp = torch.log_softmax(self(x) / temperature, dim=-1)  # (B, T, V)
        return logp.gather(-1, x.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def log_prob(
        self, x: Tensor, *, temperature: float = 1.0, batch_size: int | None = None
    ) -> Tensor:
        """(n,) exact log-likelihood of each sequence x (n, T), in nats, no gradient.

        Scored `batch_size` sequences at a time; by default as many as keep each (B, T, V)
        temporary within LOG_PROB_CHUNK_BYTES. The chunking changed no value in the tests (CPU:
        chunks of 7, 41 and 100 rows, tests/test_generator.py; every smoke metric), only the
        time: temporaries of 32 MiB or more are fresh mmaps that the kernel faults in page by
        page on every call (see bench/cells/allocator.py)."""
        x = x.to(self.device)
        if batch_size is None:
            row_bytes = x.shape[1] * self.vocab_size * 4  # one sequence's float32 logits
            batch_size = max(1, LOG_PROB_CHUNK_BYTES // row_bytes)
        parts = [
            self.token_log_probs(chunk, temperature=temperature).sum(dim=1)
            for chunk in x.split(batch_size)
        ]
        return torch.cat(parts)

    # ----- sampling -----
    @torch.no_grad()
    def sample(
        self, n: int, *, rng: torch.Generator, temperature: float = 1.0, batch_size: int = 1000
    ) -> Tensor:
        """(n, T) int64 samples at the given temperature, using only `rng` for randomness."""
        return torch.cat([self._sample_batch(m, rng, temperature) for m in _chunks(n, batch_size)])

    @torch.no_grad()
    def sample_portable(
        self, n: int, *, rng: torch.Generator, temperature: float = 1.0, batch_size: int = 1000
    ) -> Tensor:
        """(n, T) int64 samples drawn on CPU from the CPU generator `rng`, the whole pass in
        float64 (`SamplingStep`): LSTM gates, read-out, exp2 and a two-level inverse CDF.

        `sample`'s float32 kernels round differently per instruction set (ATen's vectorised
        sigmoid, tanh, exp, softmax), and a uniform near a CDF boundary then picks another token;
        in float64 only a uniform within ~1e-15 of a boundary could, so the tokens are the same
        on every CPU and device (tests/test_portable_sampling.py runs it under three ATen CPU
        capabilities). Same distribution as `sample`, not the same draws; about 1.1-1.2x its
        time (docs/performance.md).
        """
        steps = SamplingStep(self, dtype=torch.float64, temperature=temperature)
        rows = [steps.sample(m, self.seq_len, rng) for m in _chunks(n, batch_size)]
        return torch.cat(rows).to(self.device)

    def _sample_batch(self, n: int, rng: torch.Generator, temperature: float) -> Tensor:
        tokens, state = self.start_tokens(n), self.initial_state(n)
        out = torch.empty(n, self.seq_len, dtype=torch.long, device=self.device)  # (B, T)
        for t in range(self.seq_len):
            logits, state = self.step(tokens, state)  # (B, V)
            tokens = sample_categorical(torch.softmax(logits / temperature, dim=-1), rng)  # (B,)
            out[:, t] = tokens
        return out


class UnigramModel(nn.Module):
    """Tokens drawn i.i.d. from fixed probabilities: the 'unigram' and 'uniform' reference rows."""

    def __init__(self, probs: Tensor, seq_len: int) -> None:
        super().__init__()
        self.register_buffer("logits", probs.clamp_min(1e-30).log())  # (V,)
        self.vocab_size, self.seq_len = probs.shape[0], seq_len

    @classmethod
    def uniform(cls, vocab_size: int, seq_len: int) -> UnigramModel:
        return cls(torch.full((vocab_size,), 1.0 / vocab_size), seq_len)

    @classmethod
    def from_counts(cls, data: Tensor, vocab_size: int, smoothing: float = 0.1) -> UnigramModel:
        """Maximum-likelihood unigram of data (n, T) with add-`smoothing` counts (none unseen)."""
        counts = torch.bincount(data.flatten(), minlength=vocab_size).double() + smoothing
        return cls((counts / counts.sum()).float(), data.shape[1])

    @torch.no_grad()
    def sample_portable(self, n: int, *, rng: torch.Generator, temperature: float = 1.0) -> Tensor:
        """(n, T) i.i.d. tokens from the CPU generator `rng`; softmax and CDF in float64, so the
        same tokens on every CPU (as `LSTMGenerator.sample_portable`)."""
        logits = self.logits.to("cpu", torch.float64)  # (V,)
        cdf = torch.softmax(logits / temperature, dim=-1).cumsum(0)  # (V,), shared by all
        u = torch.rand(n * self.seq_len, generator=rng, dtype=torch.float64) * cdf[-1]
        idx = torch.searchsorted(cdf, u, right=True).clamp_(max=self.vocab_size - 1)
        return idx.view(n, self.seq_len).to(self.logits.device)  # (n, T)

    @torch.no_grad()
    def log_prob(self, x: Tensor, *, temperature: float = 1.0) -> Tensor:
        logp = torch.log_softmax(self.logits / temperature, dim=-1)  # (V,)
        return logp[x.to(logp.device)].sum(dim=1)  # (n,)


class SamplingStep:
    """The generator's sampling step written out from its weights, exactly, for many draws.

    The input half of the LSTM gates depends only on the token: one table (V, 4H) replaces
    embedding + matmul. The read-out is scaled by log2(e) / temperature, so `exp2` yields the
    unnormalised next-token probabilities (exp2 is cheaper than exp on CPU, and this pass over V
    is the sampling cost). Same gate equations and order (i, f, g, o) as `torch.nn.LSTM`. With
    `dtype`, the tables are copies of that dtype on CPU (`sample_portable`: float64).
    """

    @torch.no_grad()
    def __init__(
        self, generator: LSTMGenerator, dtype: torch.dtype | None = None, temperature: float = 1.0
    ) -> None:
        def w(p: Tensor) -> Tensor:
            return p.detach() if dtype is None else p.detach().to("cpu", dtype)

        lstm, scale = generator.lstm, 1 / (math.log(2) * temperature)
        bias = w(lstm.bias_ih_l0) + w(lstm.bias_hh_l0)  # (4H,)
        self.gates_in = torch.addmm(bias, w(generator.embedding.weight), w(lstm.weight_ih_l0).T)
        self.w_hh = w(lstm.weight_hh_l0).T  # (H, 4H)
        # read-out with its bias as an extra input row: mm writes the logits in one pass (H+1, V)
        self.w_out = torch.cat([w(generator.out.weight).T, w(generator.out.bias)[None]]) * scale
        self.start, self.block = generator.start_token, block_size(generator.vocab_size)
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

    def sample(self, n: int, seq_len: int, rng: torch.Generator) -> Tensor:
        """(n, T) int64 draws from the start token, one two-level inverse CDF per step."""
        h = self.w_hh.new_zeros(n, self.w_hh.shape[0])  # (B, H)
        c, tokens = h, torch.full((n,), self.start, dtype=torch.long, device=h.device)  # (B,)
        out = torch.empty(n, seq_len, dtype=torch.long, device=h.device)  # (B, T)
        for t in range(seq_len):
            h, c = self.step(tokens, h, c)
            tokens = sample_blocked(self.weights(h), self.block, rng)  # (B,)
            out[:, t] = tokens
        return out


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]
