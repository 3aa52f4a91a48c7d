"""The task data and the evaluation draws do not depend on the CPU's instruction set.

`sample_portable` draws in float64 on CPU; `sample` (training's draws) in float32, where ATen's
vectorised kernels round differently under each ATEN_CPU_CAPABILITY.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from methods.generator import LSTMGenerator, UnigramModel
from oracle.data import OracleSpec, Task, load_task
from oracle.model import random_oracle

ROOT = Path(__file__).resolve().parents[1]
# ATen's CPU capability and, paired with it, the instruction set MKL (the float64 matrix
# products) may use: both kernel families vary
CAPABILITIES = {"default": "SSE4_2", "avx2": "AVX2", "avx512": "AVX512"}

# Runs in a fresh process per capability: the paper oracle's task data (2,000 + 2,000, the sizes
# in which the float32 sampler gave three digests), a generator's and a unigram's evaluation draws
# at two temperatures, and the float32 sampler's draws as a control.
_SCRIPT = """
import hashlib, json, sys
import methods  # noqa: F401 (the registry first: oracle.data <-> methods.mle_es)
import torch
from methods.generator import LSTMGenerator, UnigramModel
from oracle.data import OracleSpec, build_oracle, _sample_split, Task

def digest(*tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:12]

oracle, identity = build_oracle(OracleSpec(kind="seqgan-paper", path=sys.argv[1]))
train = _sample_split(oracle, identity, "train", 2000)
test = _sample_split(oracle, identity, "test", 2000)
gen = LSTMGenerator().init_normal_(0.5, torch.Generator().manual_seed(5))
uni = UnigramModel.from_counts(train, 5000)
rng = lambda: torch.Generator().manual_seed(11)
print(json.dumps({
    "capability": torch.backends.cpu.get_cpu_capability(),
    "task": Task(oracle, identity, train, test).data_digest,
    "eval": digest(*(m.sample_portable(500, rng=rng(), temperature=t)
                     for m in (gen, uni) for t in (1.0, 0.5))),
    "float32": digest(oracle.sample(2000, rng=torch.Generator().manual_seed(1))),
}))
"""


def _draw_under(capability: str, oracle_path: Path) -> dict:
    env = os.environ | {
        "ATEN_CPU_CAPABILITY": capability,
        "MKL_ENABLE_INSTRUCTIONS": CAPABILITIES[capability],
        "OMP_NUM_THREADS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(oracle_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_task_data_and_evaluation_draws_are_the_same_under_every_cpu_capability(
    paper_oracle_path,
):
    runs = [_draw_under(c, paper_oracle_path) for c in CAPABILITIES]
    assert len({r["task"] for r in runs}) == 1, runs
    assert len({r["eval"] for r in runs}) == 1, runs
    if [r["capability"] for r in runs] == ["DEFAULT", "AVX2", "AVX512"]:
        # the control: on a CPU with all three (one without AVX-512 silently runs AVX2 for it),
        # the float32 sampler's draws differ under each, so the capabilities really changed
        # the kernels the portable draws went through
        assert len({r["float32"] for r in runs}) == 3, runs


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_portable_draws_follow_the_models_distribution(temperature):
    """V = 3, T = 3: the frequencies of 60,000 draws match the exact probabilities at that
    temperature within 4.5 standard errors, for all 27 sequences."""
    gen = LSTMGenerator(3, 4, 4, 3).init_normal_(1.0, torch.Generator().manual_seed(2))
    seqs = torch.tensor(list(itertools.product(range(3), repeat=3)))  # (27, 3)
    exact = gen.log_prob(seqs, temperature=temperature).double().exp()  # (27,)
    assert exact.sum().item() == pytest.approx(1.0, abs=1e-5)
    n = 60_000
    x = gen.sample_portable(n, rng=torch.Generator().manual_seed(0), temperature=temperature)
    counts = torch.bincount(x[:, 0] * 9 + x[:, 1] * 3 + x[:, 2], minlength=27).double()  # (27,)
    freq, se = counts / n, (exact * (1 - exact) / n).sqrt()
    assert ((freq - exact).abs() <= 4.5 * se + 1e-12).all(), (freq, exact)


def test_portable_draws_at_a_tiny_temperature_are_the_float32_steps_argmax():
    """The written-out float64 LSTM is torch.nn.LSTM's: at temperature 1e-4 every draw is the
    argmax of the float32 `step` logits (a random model with std-1 weights, V = 50)."""
    gen = LSTMGenerator(50, 8, 8, 10).init_normal_(1.0, torch.Generator().manual_seed(3))
    x = gen.sample_portable(64, rng=torch.Generator().manual_seed(0), temperature=1e-4)
    tokens, state = gen.start_tokens(64), gen.initial_state(64)
    with torch.no_grad():
        for t in range(10):
            logits, state = gen.step(tokens, state)  # (B, V)
            tokens = logits.argmax(-1)  # (B,)
            assert torch.equal(x[:, t], tokens), t


def test_portable_draws_are_reproducible_and_use_only_their_stream():
    gen = LSTMGenerator(50, 8, 8, 6).init_normal_(1.0, torch.Generator().manual_seed(4))
    a = gen.sample_portable(100, rng=torch.Generator().manual_seed(1))
    b = gen.sample_portable(100, rng=torch.Generator().manual_seed(1))
    c = gen.sample_portable(100, rng=torch.Generator().manual_seed(2))
    assert a.dtype == torch.int64 and a.shape == (100, 6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unigram_portable_draws_follow_their_probabilities():
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    uni = UnigramModel(probs, seq_len=5)
    x = uni.sample_portable(20_000, rng=torch.Generator().manual_seed(0))  # (n, 5)
    freq = torch.bincount(x.flatten(), minlength=4).double() / x.numel()
    se = (probs.double() * (1 - probs.double()) / x.numel()).sqrt()
    assert ((freq - probs.double()).abs() <= 4.5 * se + 1e-12).all(), freq
    assert freq[3] == 0
    assert math.isclose(uni.log_prob(torch.tensor([[0, 1]])).item(), math.log(0.15), rel_tol=1e-6)


def test_task_data_digest_names_the_tokens_and_survives_the_cache(tmp_path):
    spec = OracleSpec(seed=3, vocab_size=40, emb_dim=4, hidden_dim=4, seq_len=5)
    fresh = load_task(spec, 30, 20, tmp_path)
    cached = load_task(spec, 30, 20, tmp_path)  # read back from the cache file
    assert fresh.data_digest == cached.data_digest
    assert len(fresh.data_digest) == 12
    oracle = random_oracle(3, vocab_size=40, emb_dim=4, hidden_dim=4, seq_len=5)
    flipped = fresh.test.clone()
    flipped[0, 0] = (flipped[0, 0] + 1) % 40
    assert Task(oracle, fresh.identity, fresh.train, flipped).data_digest != fresh.data_digest
