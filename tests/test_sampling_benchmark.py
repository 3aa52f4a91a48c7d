"""Cost of the evaluation's float64 draws against training's float32 ones, at the paper's size.

The task data and every evaluation draw come from `LSTMGenerator.sample_portable` (float64 on
CPU, the same tokens under every instruction set); training draws with the float32 `sample`.
The body: 1,000 sequences (one batch of either) of length 20 at V = 5000 from a generator with
N(0, 1) weights, the oracle's initialisation (that both draw from the model's distribution:
tests/test_portable_sampling.py). Run:
`.venv/bin/pytest tests/test_sampling_benchmark.py --benchmark-only -p no:xdist` (group
"sampling"; compare the two means). With `--benchmark-disable` each body runs once and only the
output checks apply.
"""

import pytest
import torch

from methods.generator import LSTMGenerator

N = 1000


@pytest.fixture(scope="module")
def generator() -> LSTMGenerator:
    return LSTMGenerator().init_normal_(1.0, torch.Generator().manual_seed(0))


@pytest.mark.benchmark(group="sampling")
@pytest.mark.parametrize("sampler", ["sample", "sample_portable"])
def test_sampling_cost(benchmark, generator, sampler):
    draw = getattr(generator, sampler)
    x = benchmark.pedantic(
        lambda: draw(N, rng=torch.Generator().manual_seed(1)), rounds=5, iterations=1
    )
    assert x.shape == (N, 20) and x.dtype == torch.int64
    assert 0 <= int(x.min()) and int(x.max()) < 5000
