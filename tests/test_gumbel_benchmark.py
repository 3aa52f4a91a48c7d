"""Cost of the Gumbel GAN's relaxed one-hot rows on CPU as the inverse temperature beta rises.

The gumbel method feeds the critic softmax(beta (logits + g)) (methods/gumbel.py), with beta
annealed from 1 to 100. With plain softmax ("plain" below), at intermediate beta many entries of
those rows are subnormal floats
(below 1.18e-38: too small for float32's normal range, not yet rounded to zero), and CPU
arithmetic on subnormals is many times slower; at large beta they underflow to exact zeros and the
cost falls back. This is most likely why a `long` gumbel cell's time per 200 updates grew from
99 s to 571 s while beta rose from 1 to about 8 on the paper's oracle (docs/performance.md,
"Gumbel on CPU").
Not shown: that the trained generator's rows hold them; these synthetic logits make subnormals
only from beta of about 5. The method's `relaxed_one_hot` ("floored") makes entries below 2^-64
of their row's largest exact zeros, so no subnormal arises and its cost is flat in beta.

The body: one batch's relaxed rows (B T, V) = (1280, 5000) from fixed logits of standard
deviation 2, projected by a (V, 64) embedding as the critic does, then the backward pass. Run:
`.venv/bin/pytest tests/test_gumbel_benchmark.py --benchmark-only -p no:xdist` (group
"gumbel-relaxation"; compare the means over beta, per implementation). With
`--benchmark-disable` each body runs once and only the output checks apply.
"""

import pytest
import torch

from methods.critic import gumbel_noise
from methods.gumbel import RELAXED_FLOOR, relaxed_one_hot
from tools.subnormal_check import subnormal_fraction

ROWS, V, EMB = 64 * 20, 5000, 64


@pytest.fixture(scope="module")
def relaxation_inputs():
    rng = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.randn(ROWS, V, generator=rng)  # (B T, V)
    noise = gumbel_noise((ROWS, V), rng, torch.device("cpu"))  # (B T, V)
    embedding = torch.randn(V, EMB, generator=rng) / V**0.5  # (V, E)
    return logits, noise, embedding


def plain(perturbed, beta):
    """The relaxation as it was: plain softmax, subnormals and all."""
    return torch.softmax(beta * perturbed, dim=-1)


RELAXATIONS = {"plain": plain, "floored": relaxed_one_hot}


def relax_and_backward(logits, noise, embedding, beta, relax=relaxed_one_hot):
    """The relaxed rows (B T, V) and the gradient of their embedding's sum w.r.t. the logits."""
    logits = logits.clone().requires_grad_()
    relaxed = relax(logits + noise, beta)  # (B T, V)
    (relaxed @ embedding).sum().backward()  # (B T, E) -> scalar
    return relaxed.detach(), logits.grad


def test_intermediate_beta_makes_subnormal_rows(relaxation_inputs):
    # the benchmark below is only about subnormals if beta = 8 really produces them here
    relaxed = {
        beta: relax_and_backward(*relaxation_inputs, beta, plain)[0] for beta in (1.0, 8.0, 30.0)
    }
    assert subnormal_fraction(relaxed[1.0]) == 0.0
    assert subnormal_fraction(relaxed[8.0]) > 0.1
    assert subnormal_fraction(relaxed[30.0]) < subnormal_fraction(relaxed[8.0])


@pytest.mark.parametrize("beta", [1.0, 8.0, 30.0, 100.0])
def test_floored_rows_hold_no_subnormal_and_match_softmax(relaxation_inputs, beta):
    rows, grad = relax_and_backward(*relaxation_inputs, beta)
    exact, exact_grad = relax_and_backward(*relaxation_inputs, beta, plain)
    assert subnormal_fraction(rows) == 0.0 and subnormal_fraction(grad) == 0.0
    # the zeros are exactly the entries below 2^-64 of their row's largest
    dropped = rows == 0
    assert torch.equal(dropped, exact < exact.amax(dim=-1, keepdim=True) * 2.0**-64)
    kept = rows[~dropped]
    assert kept.min() >= 2.0**-64 / V > torch.finfo(torch.float32).tiny
    # the rest is softmax up to float32 rounding; the gradients too
    torch.testing.assert_close(rows, exact, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(grad, exact_grad, rtol=1e-4, atol=1e-9)
    assert RELAXED_FLOOR == pytest.approx(-44.3614, abs=1e-4)


@pytest.mark.benchmark(group="gumbel-relaxation")
@pytest.mark.parametrize("beta", [1.0, 8.0, 30.0, 100.0])
@pytest.mark.parametrize("kind", list(RELAXATIONS))
def test_relaxed_rows_cost(benchmark, relaxation_inputs, kind, beta):
    relax = RELAXATIONS[kind]
    relaxed, grad = benchmark.pedantic(
        lambda: relax_and_backward(*relaxation_inputs, beta, relax), rounds=5, iterations=1
    )
    assert torch.allclose(relaxed.sum(dim=-1), torch.ones(ROWS), atol=1e-4)
    assert torch.isfinite(grad).all()
    benchmark.extra_info["subnormal_fraction"] = subnormal_fraction(relaxed)
