"""The oracle: seeded determinism, exact gate mapping of the paper's file, safe loading, caching."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.metrics.nll import nll_oracle
from methods.generator import UnigramModel
from oracle.data import (
    SAMPLING_CODE,
    OracleSpec,
    data_cache_path,
    load_task,
    sampling_code_version,
)
from oracle.model import OracleFileError, load_paper_oracle, random_oracle


def test_random_oracle_is_determined_by_its_seed():
    a, b, c = (
        random_oracle(5, 50, 8, 8, 8),
        random_oracle(5, 50, 8, 8, 8),
        random_oracle(6, 50, 8, 8, 8),
    )
    for (name, pa), pb, pc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb)
        if name != "lstm.bias_hh_l0":
            assert not torch.equal(pa, pc)


def test_random_oracle_parameters_are_standard_normal():
    oracle = random_oracle(66)
    w = oracle.out.weight.flatten()
    assert w.mean().abs() < 0.01 and (w.std() - 1).abs() < 0.01
    assert torch.equal(oracle.lstm.bias_hh_l0, torch.zeros(128))  # one bias per gate, as the paper
    assert not any(p.requires_grad for p in oracle.parameters())


def _paper_lstm_numpy(arrays, tokens):
    """The paper's hand-written LSTM equations, in numpy: log-probabilities of `tokens`."""
    E, Wi, Ui, bi, Wf, Uf, bf, Wog, Uog, bog, Wc, Uc, bc, Wo, bo = (
        a.astype(np.float64) for a in arrays
    )
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h = c = np.zeros(Wi.shape[1])
    x, total = E[0], 0.0  # start token 0
    for tok in tokens:
        i, f = sig(x @ Wi + h @ Ui + bi), sig(x @ Wf + h @ Uf + bf)
        o, cc = sig(x @ Wog + h @ Uog + bog), np.tanh(x @ Wc + h @ Uc + bc)
        c = f * c + i * cc
        h = o * np.tanh(c)
        logits = h @ Wo + bo
        total += logits[tok] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        x = E[tok]
    return total


def test_paper_oracle_matches_the_papers_equations(paper_oracle_path):
    arrays = pickle.load(open(paper_oracle_path, "rb"))  # noqa: S301 - trusted test fixture
    oracle = load_paper_oracle(paper_oracle_path)
    x = oracle.sample(3, rng=torch.Generator().manual_seed(0))
    ours = oracle.log_prob(x).double()
    theirs = torch.tensor([_paper_lstm_numpy(arrays, row.tolist()) for row in x])
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_paper_oracle_reference_values(paper_oracle_path):
    """Fixed facts of that file (reference notes: own samples 5.752, unigram 10.285 per token)."""
    oracle = load_paper_oracle(paper_oracle_path)
    own = oracle.sample(2000, rng=torch.Generator().manual_seed(1))
    assert nll_oracle(oracle, own) == pytest.approx(5.752, abs=0.06)
    unigram = UnigramModel.from_counts(own, 5000, smoothing=0.0).sample_portable(
        1000, rng=torch.Generator().manual_seed(2)
    )
    assert nll_oracle(oracle, unigram) == pytest.approx(10.285, abs=0.1)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/seqgan-bench-pwned",))


def test_paper_loader_refuses_a_code_payload(tmp_path):
    marker = __import__("pathlib").Path("/tmp/seqgan-bench-pwned")
    marker.unlink(missing_ok=True)
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps([_Payload()]))
    with pytest.raises(OracleFileError, match="refusing to unpickle global .*system"):
        load_paper_oracle(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read oracle file"),
        (b"not a pickle at all", "not a valid pickle"),
        ("truncated", "not a valid pickle"),
        (pickle.dumps([np.zeros((3, 3), np.float32)] * 15), "array bi has shape"),
        (pickle.dumps([np.zeros(3, np.float32)] * 2), "list of 15 arrays"),
    ],
)
def test_paper_loader_rejects_bad_files(tmp_path, paper_oracle_path, content, message):
    path = tmp_path / "params.pkl"
    if content == "truncated":
        content = paper_oracle_path.read_bytes()[:5000]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OracleFileError, match=message):
        load_paper_oracle(path)


def test_task_data_is_cached_and_regenerated_identically(tmp_path):
    spec = OracleSpec(seed=3, vocab_size=50, emb_dim=8, hidden_dim=8, seq_len=8)
    first = load_task(spec, 200, 100, tmp_path)
    cached = load_task(spec, 200, 100, tmp_path)
    assert torch.equal(first.train, cached.train) and torch.equal(first.test, cached.test)
    for f in tmp_path.glob("data-*.pt"):
        f.unlink()
    again = load_task(spec, 200, 100, tmp_path)
    assert torch.equal(first.train, again.train) and torch.equal(first.test, again.test)
    assert first.train.shape == (200, 8) and first.test.shape == (100, 8)
    assert not torch.equal(first.train[:100], first.test)  # independent draws
    other = load_task(
        OracleSpec(seed=4, vocab_size=50, emb_dim=8, hidden_dim=8, seq_len=8), 200, 100, tmp_path
    )
    assert other.identity != first.identity


def test_data_cache_is_keyed_by_the_sampling_code(tmp_path):
    """An edit to any file that draws the task data names a different cache file, so a cache
    drawn by old code is never silently reused; files outside the sampling code do not."""
    root = tmp_path / "src"
    repo = Path(__file__).resolve().parent.parent
    for name in SAMPLING_CODE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo / name, root / name)
    before = sampling_code_version(root)
    assert before == sampling_code_version(repo)  # a copy of the same code: the same key
    generator = root / "methods" / "generator.py"
    generator.write_text(generator.read_text().replace("def sample(", "def sample(  ", 1))
    after = sampling_code_version(root)
    assert after != before
    paths = {data_cache_path("random-s3-x", 200, 100, tmp_path, code) for code in (before, after)}
    assert len(paths) == 2
    spec = OracleSpec(seed=3, vocab_size=50, emb_dim=8, hidden_dim=8, seq_len=8)
    load_task(spec, 200, 100, tmp_path / "cache")
    (written,) = (tmp_path / "cache").glob("data-*.pt")
    assert written.name.endswith(f"-code{sampling_code_version()}.pt")
