"""The policy-gradient family's CNN discriminator: a real/fake classifier, P(real) the reward.

The network of SeqGAN (Yu et al., AAAI-17) as in its code ([HEAD] = LantaoYu/SeqGAN at e2b52fb,
discriminator.py; see shared/reference/seqgan-original.md). It takes plain filter widths and map
counts, not a method's Config, so every method that rewards a generator with a classifier's
verdict (SeqGAN, SeqGAN with a baseline, MaliGAN) builds it from its own fields; RankGAN's ranker
is this network without its class layer (`hidden`, the highway output, is its sentence feature).
How the adversary's fields are named across methods/, and why the rollout's view of this network
lives in methods/rollout.py: docs/methods.md, "Naming of the adversary's fields".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
        """Max-pooled ReLU conv features (B, F) of token sequences x (B, T): the plain forward.

        Each width's conv is one matrix product of its unfolded windows (B P, E w) with its
        weights (E w, n), and the ReLU comes after the max over positions (they commute, and
        so do their gradients, ties included): the same function as Conv1d, ReLU, max, up to
        float rounding (tests/test_discriminator_benchmark.py), and faster on CPU.
        """
        e = self.embedding(x)  # (B, T, E)
        pooled = []
        for conv in self.convs:
            n, _, w = conv.weight.shape
            windows = e.unfold(1, w, 1)  # (B, P, E, w), P = T - w + 1: Conv1d's weight layout
            b, p = windows.shape[:2]
            flat = windows.reshape(b * p, -1)  # (B P, E w)
            z = torch.addmm(conv.bias, flat, conv.weight.view(n, -1).T)  # (B P, n)
            pooled.append(z.view(b, p, n).amax(dim=1))  # (B, n)
        return F.relu(torch.cat(pooled, dim=1))  # (B, F)

    def head(self, features: Tensor, dropout_rng: torch.Generator | None = None) -> Tensor:
        """Highway, dropout (only when a generator is given: training), output logits (B, 2)."""
        return self.out(self.hidden(features, dropout_rng))  # (B, 2)

    def hidden(self, features: Tensor, dropout_rng: torch.Generator | None = None) -> Tensor:
        """The highway output (B, F), after dropout when a generator is given: the class
        layer's input, and RankGAN's ranker feature (which has no class layer)."""
        transform, gate = self.highway(features).chunk(2, dim=-1)  # (B, F) each
        t = torch.sigmoid(gate)
        h = t * F.relu(transform) + (1 - t) * features  # (B, F)
        if dropout_rng is not None:
            keep = torch.rand(h.shape, generator=dropout_rng, device=h.device) < self.dropout_keep
            h = h * keep / self.dropout_keep  # TF dropout: scale the kept units by 1/keep
        return h

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
