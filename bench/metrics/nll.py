"""Pure metric functions on any `SequenceModel` (see methods/generator.py).

All NLLs are mean per-token negative log-likelihoods in nats, as the SeqGAN paper's Table 1.
"""

from __future__ import annotations

from torch import Tensor

from methods.generator import SequenceModel


def mean_nll(logp: Tensor, x: Tensor) -> float:
    """Mean per-token NLL of sequences x (n, T) from their log-likelihoods logp (n,)."""
    return -logp.sum().item() / x.numel()


def nll_oracle(oracle: SequenceModel, samples: Tensor) -> float:
    """Quality: the oracle's mean per-token NLL of generator samples (n, T). Lower is better.

    It has no floor at the oracle's own entropy rate: a generator that concentrates on the
    oracle's likeliest sequences scores below it (a cooled MLE does, Caccia et al. 2020), so read
    it with `nll_test`, or read the reverse KL (bench/metrics/divergence.py), which cooling
    cannot game.
    """
    return mean_nll(oracle.log_prob(samples), samples)


def nll_test(model: SequenceModel, heldout: Tensor, temperature: float = 1.0) -> float:
    """Coverage: the model's mean per-token NLL of held-out oracle data (n, T). Lower is better."""
    return mean_nll(model.log_prob(heldout, temperature=temperature), heldout)
