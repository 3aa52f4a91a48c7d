"""The relaxation GANs' critic, a CNN over one-hot or relaxed token rows, and their Gumbel noise.

Shared by WGAN-GP (methods/wgan_gp.py) and the Gumbel-softmax GAN (methods/gumbel.py): both feed
their critic (B, T, V) rows of vocabulary distributions, one-hot for real data and relaxed for
generated data, and both draw Gumbel noise from the run's own generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SequenceCNN(nn.Module):
    """Scores (B, T, V) rows of one-hot or relaxed tokens: one real-valued output per sequence.

    The first layer is a linear embedding (a bias-free Linear from V inputs), so a one-hot row
    reads out exactly one embedding column and a soft row the expected embedding: one function
    for real and fake (`embed_tokens` is the same map on one-hot rows, as a cheap lookup).
    No batch (or any other) normalisation: it would couple the samples of a batch and break the
    per-sample gradient penalty. Max-over-time pooling and a highway layer follow SeqGAN's D.
    """

    def __init__(
        self, vocab_size: int, emb_dim: int, num_filters: int, filter_sizes: tuple[int, ...]
    ) -> None:
        super().__init__()
        features = num_filters * len(filter_sizes)
        self.embedding = nn.Linear(vocab_size, emb_dim, bias=False)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, num_filters, w) for w in filter_sizes)
        self.transform = nn.Linear(features, features)
        self.gate = nn.Linear(features, features)
        self.out = nn.Linear(features, 1)

    @torch.no_grad()
    def init_(self, rng: torch.Generator) -> SequenceCNN:
        """Weights ~ N(0, 1/fan_in), biases 0, drawn from `rng` (not torch's global generator).

        Fan-in scaling of the V-input embedding keeps the input gradient O(1) at the start.
        """
        for p in self.parameters():
            draw = torch.randn(p.shape, generator=rng, device=p.device) / p[0].numel() ** 0.5
            p.copy_(draw if p.dim() > 1 else torch.zeros_like(p))
        return self

    def embed(self, x: Tensor) -> Tensor:
        return self.embedding(x)  # (B, T, V) -> (B, T, E)

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        # = embed(one_hot(tokens)), (B, T) -> (B, T, E). F.embedding, not weight.T[tokens]: the
        # backward of advanced indexing accumulates in thread order on CPU (not reproducible)
        return F.embedding(tokens, self.embedding.weight.T)

    def score(self, e: Tensor) -> Tensor:
        """The network above the embedding: (B, T, E) -> (B,)."""
        e = e.transpose(1, 2)  # (B, E, T)
        h = torch.cat([conv(e).relu().amax(dim=2) for conv in self.convs], dim=1)  # (B, F)
        gate = torch.sigmoid(self.gate(h))  # (B, F)
        h = gate * self.transform(h).relu() + (1 - gate) * h  # (B, F): highway
        return self.out(h).squeeze(1)  # (B,)

    def forward(self, x: Tensor) -> Tensor:
        return self.score(self.embed(x))  # (B, T, V) -> (B,)


def gumbel_noise(shape: tuple[int, ...], rng: torch.Generator, device: torch.device) -> Tensor:
    """Standard Gumbel noise -log(-log u), u ~ U[0, 1) from `rng`, clamped so u = 0 stays finite."""
    u = torch.rand(shape, generator=rng, device=device)
    neg_log_u = (-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10)  # in (0, 23]
    return -torch.log(neg_log_u)
