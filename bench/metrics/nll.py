"""Pure metric functions on any `SequenceModel` (see methods/generator.py).

All NLLs are mean per-token negative log-likelihoods in nats, as the SeqGAN paper's Table 1.
"""

from __future__ import annotations

from torch import Tensor

from methods.generator import SequenceModel


def nll_oracle(oracle: SequenceModel, samples: Tensor) -> float:
    """Quality: the oracle's mean per-token NLL of generator samples (n, T). Lower is better.

    Its floor is the oracle's entropy rate (its own samples); it rewards low-entropy generators, so
    read it together with `nll_test`.
    """
    return -oracle.log_prob(samples).sum().item() / samples.numel()


def nll_test(model: SequenceModel, heldout: Tensor, temperature: float = 1.0) -> float:
    """Coverage: the model's mean per-token NLL of held-out oracle data (n, T). Lower is better."""
    return -model.log_prob(heldout, temperature=temperature).sum().item() / heldout.numel()
