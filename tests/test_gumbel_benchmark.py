"""Cost of the Gumbel GAN's relaxed one-hot rows on CPU as the inverse temperature beta rises.

The gumbel method feeds the critic softmax(beta (logits + g)) (methods/gumbel.py), with beta
annealed from 1 to 100. At intermediate beta many entries of those rows are subnormal floats
(below 1.18e-38: too small for float32's normal range, not yet rounded to zero), and CPU
arithmetic on subnormals is many times slower; at large beta they underflow to exact zeros and the
cost falls back. This is most likely why a `long` gumbel cell's time per 200 updates grew from
99 s to 571 s while beta rose from 1 to about 8 on the paper's oracle (docs/performance.md,
"Gumbel on CPU").
Not shown: that the trained generator's rows hold them; these synthetic logits make subnormals
only from beta of about 5.

The body: one batch's relaxed rows (B T, V) = (1280, 5000) from fixed logits of standard
deviation 2, projected by a (V, 64) embedding as the critic does, then the backward pass. Run:
`.venv/bin/pytest tests/test_gumbel_benchmark.py --benchmark-only -p no:xdist` (group
"gumbel-relaxation"; compare the means over beta). With `--benchmark-disable` each body runs
once and only the output checks apply.
"""

import pytest
import torch

from methods.critic import gumbel_noise
from tools.subnormal_check import subnormal_fraction

ROWS, V, EMB = 64 * 20, 5000, 64


@pytest.fixture(scope="module")
def relaxation_inputs():
    rng = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.randn(ROWS, V, generator=rng)  # (B T, V)
    noise = gumbel_noise((ROWS, V), rng, torch.device("cpu"))  # (B T, V)
    embedding = torch.randn(V, EMB, generator=rng) / V**0.5  # (V, E)
    return logits, noise, embedding


def relax_and_backward(logits, noise, embedding, beta):
    """The relaxed rows (B T, V) and the gradient of their embedding's sum w.r.t. the logits."""
    logits = logits.clone().requires_grad_()
    relaxed = torch.softmax(beta * (logits + noise), dim=-1)  # (B T, V)
    (relaxed @ embedding).sum().backward()  # (B T, E) -> scalar
    return relaxed.detach(), logits.grad


def test_intermediate_beta_makes_subnormal_rows(relaxation_inputs):
    # the benchmark below is only about subnormals if beta = 8 really produces them here
    relaxed = {beta: relax_and_backward(*relaxation_inputs, beta)[0] for beta in (1.0, 8.0, 30.0)}
    assert subnormal_fraction(relaxed[1.0]) == 0.0
    assert subnormal_fraction(relaxed[8.0]) > 0.1
    assert subnormal_fraction(relaxed[30.0]) < subnormal_fraction(relaxed[8.0])


@pytest.mark.benchmark(group="gumbel-relaxation")
@pytest.mark.parametrize("beta", [1.0, 8.0, 30.0, 100.0])
def test_relaxed_rows_cost(benchmark, relaxation_inputs, beta):
    relaxed, grad = benchmark.pedantic(
        lambda: relax_and_backward(*relaxation_inputs, beta), rounds=5, iterations=1
    )
    assert torch.allclose(relaxed.sum(dim=-1), torch.ones(ROWS), atol=1e-4)
    assert torch.isfinite(grad).all()
    benchmark.extra_info["subnormal_fraction"] = subnormal_fraction(relaxed)
