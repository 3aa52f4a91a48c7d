"""The shared generator: exact likelihoods, sampling, the step interface, reference models."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from bench.metrics.nll import nll_oracle, nll_test
from methods.generator import (
    LOG_PROB_CHUNK_BYTES,
    LSTMGenerator,
    UnigramModel,
    sample_categorical,
)
from tests.conftest import tiny_generator


def uniform_generator(vocab=5000, seq_len=20) -> LSTMGenerator:
    gen = LSTMGenerator(vocab_size=vocab, seq_len=seq_len)
    gen.init_normal_(1.0, torch.Generator().manual_seed(0))
    with torch.no_grad():  # zero read-out: every step's logits are all equal
        gen.out.weight.zero_()
        gen.out.bias.zero_()
    return gen


def test_uniform_logits_give_exactly_ln_v_per_token():
    gen = uniform_generator()
    x = torch.randint(0, 5000, (64, 20), generator=torch.Generator().manual_seed(1))
    assert nll_test(gen, x) == pytest.approx(math.log(5000), abs=1e-5)
    assert gen.log_prob(x) == pytest.approx(torch.full((64,), -20 * math.log(5000)), abs=1e-3)
    with torch.no_grad():
        logp = torch.log_softmax(gen(x[:4]), -1)  # (4, 20, V): every step's distribution
    entropy = -(logp.exp() * logp).sum(-1)  # (4, 20) nats
    assert entropy == pytest.approx(torch.full((4, 20), math.log(5000)), abs=1e-4)


def test_log_prob_equals_step_by_step_scoring(task):
    gen = tiny_generator(task, std=0.5)
    x = task.train[:16]
    tokens, state, total = gen.start_tokens(16), gen.initial_state(16), torch.zeros(16)
    with torch.no_grad():
        for t in range(x.shape[1]):
            logits, state = gen.step(tokens, state)
            total += torch.log_softmax(logits, -1).gather(1, x[:, t : t + 1]).squeeze(1)
            tokens = x[:, t]
    assert gen.log_prob(x) == pytest.approx(total, abs=1e-5)


def test_log_prob_at_temperature_divides_logits(task):
    gen = tiny_generator(task, std=0.5)
    x = task.train[:8]
    logits = gen(x) / 0.7  # (B, T, V)
    direct = torch.log_softmax(logits, -1).gather(-1, x[..., None]).squeeze(-1).sum(1)
    assert gen.log_prob(x, temperature=0.7) == pytest.approx(direct.detach(), abs=1e-5)


def test_log_prob_does_not_depend_on_its_chunking(monkeypatch):
    """The default chunk (LOG_PROB_CHUNK_BYTES of logits: 41 sequences at V = 5000, T = 20)
    is really used, and gives each sequence bit for bit the value that one chunk of all of
    them, or chunks of 7, give, at temperatures 1 and 0.7."""
    gen = LSTMGenerator()  # the task's sizes
    gen.init_normal_(1.0, torch.Generator().manual_seed(0))
    x = torch.randint(0, 5000, (100, 20), generator=torch.Generator().manual_seed(1))
    sizes = []
    scored = LSTMGenerator.token_log_probs

    def recording(self, chunk, **kw):
        sizes.append(chunk.shape[0])
        return scored(self, chunk, **kw)

    monkeypatch.setattr(LSTMGenerator, "token_log_probs", recording)
    for temperature in (1.0, 0.7):
        whole = gen.log_prob(x, temperature=temperature, batch_size=100)
        sizes.clear()
        assert torch.equal(gen.log_prob(x, temperature=temperature), whole)
        assert sizes == [41, 41, 18]  # 16 MiB // (20 * 5000 * 4 bytes) = 41 rows a chunk
        assert torch.equal(gen.log_prob(x, temperature=temperature, batch_size=7), whole)
    assert LOG_PROB_CHUNK_BYTES == 16 * 2**20


def test_sampling_is_determined_by_the_rng(task):
    gen = tiny_generator(task, std=0.5)
    a = gen.sample(100, rng=torch.Generator().manual_seed(3))
    b = gen.sample(100, rng=torch.Generator().manual_seed(3))
    c = gen.sample(100, rng=torch.Generator().manual_seed(4))
    assert a.shape == (100, 8) and a.dtype == torch.long
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= a.min() and a.max() < 50


def test_sample_categorical_matches_probabilities():
    probs = torch.softmax(torch.randn(20, generator=torch.Generator().manual_seed(0)), 0)
    draws = sample_categorical(probs.expand(200_000, 20), torch.Generator().manual_seed(1))
    counts = np.bincount(draws.numpy(), minlength=20)
    expected = probs.double().numpy() / probs.double().sum().item() * 200_000
    assert stats.chisquare(counts, expected).pvalue > 1e-3


def test_sample_categorical_never_draws_zero_mass_tokens():
    probs = torch.zeros(1000, 7)
    probs[:, 3] = 1.0
    assert (sample_categorical(probs, torch.Generator().manual_seed(0)) == 3).all()


def test_unigram_and_uniform_reference_models():
    data = torch.tensor([[0, 0, 1, 2]])
    uni = UnigramModel.from_counts(data, vocab_size=4, smoothing=0.0)
    assert uni.log_prob(torch.tensor([[0, 1]])).item() == pytest.approx(math.log(0.5 * 0.25))
    flat = UnigramModel.uniform(5000, 20)
    x = flat.sample_portable(50, rng=torch.Generator().manual_seed(0))
    assert x.shape == (50, 20)
    assert nll_test(flat, x) == pytest.approx(math.log(5000), abs=1e-4)


def test_nll_oracle_is_mean_per_token(task):
    x = task.test[:32]
    expected = -task.oracle.log_prob(x).sum().item() / (32 * 8)
    assert nll_oracle(task.oracle, x) == pytest.approx(expected)
