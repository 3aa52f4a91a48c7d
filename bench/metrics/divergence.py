"""Exact divergences between the oracle P and a model G, from per-sequence log-likelihoods.

Both densities are exact, so each divergence is a plain Monte Carlo mean over sequences drawn
from one of them: no density estimation, no discriminator. Inputs are (n,) per-sequence
log-likelihoods in nats (summed over the T tokens); outputs are nats, per token for the KLs,
per sequence for Jensen–Shannon (bounded by ln 2). All are lower-is-better, 0 only when G = P.
Derivations: docs/bench.md, "Exact divergences".
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _mean_se(values: Tensor) -> tuple[float, float]:
    """Mean of (n,) values and its standard error (0 when n = 1)."""
    values = values.double()
    n = values.numel()
    se = values.std(unbiased=True).item() / math.sqrt(n) if n > 1 else 0.0
    return values.mean().item(), se


def reverse_kl(logp_oracle: Tensor, logp_model: Tensor, seq_len: int) -> tuple[float, float]:
    """KL(G‖P) per token and its standard error, from G's own samples y (n,) scored by both:
    mean(log G(y) − log P(y)) / T = NLL-oracle(G) − H(G). Cooling G lowers NLL-oracle but not
    this: it is ≥ 0 in expectation whatever G is. Lower is better."""
    mean, se = _mean_se(logp_model.double() - logp_oracle.double())  # (n,)
    return mean / seq_len, se / seq_len


def forward_kl(logp_oracle: Tensor, logp_model: Tensor, seq_len: int) -> tuple[float, float]:
    """KL(P‖G) per token and its standard error, from held-out oracle samples x (n,) scored by
    both: mean(log P(x) − log G(x)) / T = NLL-test(G) − NLL-test(P). Lower is better."""
    mean, se = _mean_se(logp_oracle.double() - logp_model.double())  # (n,)
    return mean / seq_len, se / seq_len


def jensen_shannon(
    oracle_on_p: Tensor, model_on_p: Tensor, oracle_on_g: Tensor, model_on_g: Tensor
) -> float:
    """Sequence-level JSD(P, G) in nats, in [0, ln 2] up to sampling error: held-out oracle
    samples x (n,) and G's samples y (m,), each scored by both densities.

    JSD = ln 2 − ½ E_P[softplus(log G − log P)] − ½ E_G[softplus(log P − log G)]. Lower is
    better."""
    on_p = torch.nn.functional.softplus(model_on_p.double() - oracle_on_p.double())  # (n,)
    on_g = torch.nn.functional.softplus(oracle_on_g.double() - model_on_g.double())  # (m,)
    return math.log(2) - 0.5 * on_p.mean().item() - 0.5 * on_g.mean().item()
