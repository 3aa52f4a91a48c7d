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
        float64: embedding, LSTM gates, read-out, exp(logits - max) and a two-level inverse CDF.

        `sample`'s float32 kernels round differently per instruction set (ATen's vectorised
        sigmoid, tanh, exp, softmax), and a uniform near a CDF boundary then picks another token;
        in float64 only a uniform within ~1e-15 of a boundary could, so the tokens are the same
        on every CPU and device (tests/test_portable_sampling.py runs it under three ATen CPU
        capabilities). Same distribution as `sample`, not the same draws; about 1.1-1.2x its
        time (docs/performance.md).
        """
        weights = {k: v.detach().to("cpu", torch.float64) for k, v in self.state_dict().items()}
        rows = [_sample_float64(weights, m, rng, temperature, self) for m in _chunks(n, batch_size)]
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


def _sample_float64(
    w: dict[str, Tensor], n: int, rng: torch.Generator, temperature: float, model: LSTMGenerator
) -> Tensor:
    """One batch of `LSTMGenerator.sample_portable` from its float64 CPU state dict `w`: the
    equations of torch.nn.LSTM (gates i, f, g, o) written out, so no float32 kernel is used; the
    temperature folded into the read-out, and the draw a two-level inverse CDF over exp(logits -
    max) (`sample_blocked`: a block sum instead of a sequential cumsum over V)."""
    h = torch.zeros(n, model.hidden_dim, dtype=torch.float64)  # (B, H)
    c = torch.zeros_like(h)  # (B, H)
    tokens = torch.full((n,), model.start_token, dtype=torch.long)  # (B,)
    out = torch.empty(n, model.seq_len, dtype=torch.long)  # (B, T)
    bias = w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]  # (4H,)
    w_out, b_out = w["out.weight"] / temperature, w["out.bias"] / temperature  # (V, H), (V,)
    block = block_size(model.vocab_size)
    for t in range(model.seq_len):
        x = w["embedding.weight"][tokens]  # (B, E)
        gates = torch.addmm(bias, x, w["lstm.weight_ih_l0"].T)  # (B, 4H)
        gates = gates.addmm_(h, w["lstm.weight_hh_l0"].T)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
        h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
        logits = torch.addmm(b_out, h, w_out.T)  # (B, V), at the temperature
        weights = logits.sub_(logits.amax(dim=1, keepdim=True)).exp_()  # (B, V), max 1
        tokens = sample_blocked(weights, block, rng)  # (B,)
        out[:, t] = tokens
    return out


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]
