"""BLEU / Self-BLEU: hand-computed cases, agreement with sacrebleu, leave-one-out vs brute force."""

import dataclasses
import logging
import math
import random

import pytest
import torch
from sacrebleu.metrics import BLEU

from bench.metrics.bleu import bleu, self_bleu

ORDERS = (2, 3, 4, 5)


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# ----- hand-computed cases (nltk method1 formula: floor 0.1 for an order with no match) -----


def test_exact_copy_of_a_reference_scores_one():
    out = bleu([[1, 2, 3, 4, 5]], [[9, 8], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 7]])
    assert out == {n: approx(1.0) for n in ORDERS}


def test_no_shared_unigram_scores_zero():
    # nltk returns 0 when no unigram matches (no smoothing applies), and so does sacrebleu.
    assert bleu([[1, 2, 3]], [[4, 5, 6], [7, 8, 9, 4]]) == {n: 0.0 for n in ORDERS}


def test_unmatched_higher_orders_are_smoothed():
    # hyp 1 2 3 4 vs ref 4 3 2 1: unigrams 4/4, bigrams 0/3 -> 0.1/3, trigrams 0/2 -> 0.1/2,
    # 4-grams 0/1 -> 0.1/1, 5-grams: none in the hypothesis, total max(0, 1) = 1 -> 0.1/1.
    # Same lengths: brevity penalty 1.
    p = [1.0, 0.1 / 3, 0.1 / 2, 0.1, 0.1]
    expected = {n: math.prod(p[:n]) ** (1 / n) for n in ORDERS}
    assert expected[2] == pytest.approx(math.sqrt(1 / 30))
    assert bleu([[1, 2, 3, 4]], [[4, 3, 2, 1]]) == {n: approx(v) for n, v in expected.items()}


def test_counts_are_clipped_by_the_max_in_any_single_reference():
    # hyp 1 1 1 1 vs ref 1 2 3 4: unigram "1" x4 clipped to 1 -> 1/4; bigram "1 1" x3 unmatched
    # -> 0.1/3. BLEU-2 = sqrt(1/4 * 1/30) = sqrt(1/120).
    assert bleu([[1, 1, 1, 1]], [[1, 2, 3, 4]], orders=(2,))[2] == approx(math.sqrt(1 / 120))
    # Adding ref 1 1 5 6: clip "1" by max(1, 2) = 2 (not the sum 3) -> 2/4; "1 1" by 1 -> 1/3.
    two_refs = bleu([[1, 1, 1, 1]], [[1, 2, 3, 4], [1, 1, 5, 6]], orders=(2,))
    assert two_refs[2] == approx(math.sqrt(2 / 4 * 1 / 3))


def test_hypothesis_shorter_than_n_scores_like_nltk():
    # hyp 3 4 vs ref 1 2 3 4: p1 = 2/2, p2 = 1/1; orders 3..5 have no n-gram in the hypothesis:
    # total max(0, 1) = 1 and 0 matches -> 0.1 each. Brevity penalty exp(1 - 4/2) = exp(-1).
    out = bleu([[3, 4]], [[1, 2, 3, 4]])
    bp = math.exp(-1)
    assert out[2] == approx(bp)
    assert out[3] == approx(bp * 0.1 ** (1 / 3))
    assert out[4] == approx(bp * 0.1 ** (2 / 4))
    assert out[5] == approx(bp * 0.1 ** (3 / 5))


def test_brevity_penalty_uses_the_closest_reference_length():
    # hyp length 3, refs of lengths 6 and 8: closest 6 -> bp = exp(1 - 6/3) = exp(-1); p1 = p2 = 1.
    out = bleu([[1, 2, 3]], [[1, 2, 3, 4, 5, 6], [7] * 8], orders=(2, 3))
    assert out == {2: approx(math.exp(-1)), 3: approx(math.exp(-1))}


def test_brevity_penalty_tie_goes_to_the_shorter_reference():
    # hyp length 5, refs of lengths 3 and 7: a tie, the shorter (3) wins -> no penalty: BLEU 1.
    # (Ties to the longer would give exp(1 - 7/5).)
    out = bleu([[1, 2, 3, 4, 5]], [[1, 2, 3], [1, 2, 3, 4, 5, 9, 9]])
    assert out == {n: approx(1.0) for n in ORDERS}


def test_empty_hypothesis_scores_zero_and_mean_is_over_hypotheses():
    assert bleu([[]], [[1, 2]]) == {n: 0.0 for n in ORDERS}
    # mean of an exact copy (1.0) and a total miss (0.0)
    assert bleu([[1, 2, 3, 4, 5], [7, 7]], [[1, 2, 3, 4, 5]]) == {n: approx(0.5) for n in ORDERS}


# ----- agreement with sacrebleu's own sentence_score -----


def _random_seqs(rng: random.Random, n: int, vocab: int, min_len: int, max_len: int):
    return [[rng.randrange(vocab) for _ in range(rng.randint(min_len, max_len))] for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sacrebleu_sentence_score_per_hypothesis(seed, caplog):
    caplog.set_level(logging.ERROR, logger="sacrebleu")  # "enable effective_order" warnings
    rng = random.Random(seed)
    refs = _random_seqs(rng, 30, vocab=6, min_len=3, max_len=12)
    hyps = _random_seqs(rng, 15, vocab=6, min_len=5, max_len=12)  # length >= max order
    ref_lines = [" ".join(map(str, r)) for r in refs]
    for n in ORDERS:
        metric = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.1, max_ngram_order=n)
        for h in hyps:
            expected = metric.sentence_score(" ".join(map(str, h)), ref_lines).score / 100
            assert bleu([h], refs, orders=(n,))[n] == pytest.approx(expected, rel=0, abs=1e-9)


def test_tensor_input_equals_list_input():
    g = torch.Generator().manual_seed(0)
    hyps = torch.randint(0, 8, (10, 6), generator=g)  # (10, 6)
    refs = torch.randint(0, 8, (40, 6), generator=g)  # (40, 6)
    assert bleu(hyps, refs) == bleu(hyps.tolist(), refs.tolist())
    assert self_bleu(hyps) == self_bleu(hyps.tolist())


# ----- Self-BLEU -----


def _brute_force_self_bleu(samples, orders):
    """Definition: each sample against all the others, the reference table rebuilt each time."""
    per_sample = [bleu([s], samples[:i] + samples[i + 1 :], orders) for i, s in enumerate(samples)]
    return {n: sum(s[n] for s in per_sample) / len(samples) for n in orders}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_self_bleu_equals_brute_force_leave_one_out_with_duplicates(seed):
    rng = random.Random(seed)
    samples = _random_seqs(rng, 20, vocab=4, min_len=1, max_len=9)  # repeats within samples
    samples += [list(s) for s in rng.sample(samples, 6)]  # duplicated samples
    samples.append([0] * 13)  # a unique length and a unique top count of "0"
    rng.shuffle(samples)
    got, expected = self_bleu(samples, ORDERS), _brute_force_self_bleu(samples, ORDERS)
    assert got == {n: approx(v) for n, v in expected.items()}


def test_self_bleu_leaves_each_sample_out_of_its_references():
    # a, a' copies score 1 against each other; b shares no unigram with them -> 0. Mean 2/3.
    # (Keeping each sample in its own references would give 1.0.)
    samples = [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [6, 7, 8, 9, 0]]
    assert self_bleu(samples) == {n: approx(2 / 3) for n in ORDERS}


def test_self_bleu_clips_by_the_runner_up_count_when_the_top_is_unique():
    # "1" appears 3x in the first sample, 1x in the second: the first is clipped by 1 -> p1 = 1/3;
    # "1 1" unmatched (0.1/2). Second sample: p1 = 1/1, no bigram (total 1, 0.1). Lengths 3 and 1.
    # First: closest other length 1 < 3, bp 1; BLEU-2 = sqrt(1/3 * 0.1/2).
    # Second: ref length 3 > 1, bp exp(1 - 3); BLEU-2 = exp(-2) * sqrt(1 * 0.1).
    expected = (math.sqrt(1 / 3 * 0.05) + math.exp(-2) * math.sqrt(0.1)) / 2
    assert self_bleu([[1, 1, 1], [1]], orders=(2,)) == {2: approx(expected)}


def test_identical_samples_give_self_bleu_one_in_the_requested_orders():
    out = self_bleu(torch.tensor([[3, 1, 4, 1, 5, 9]] * 5), orders=(5, 2))
    assert list(out) == [5, 2]
    assert out == {5: approx(1.0), 2: approx(1.0)}


# ----- errors -----


@pytest.mark.parametrize("orders", [(), (0, 2), (2.0,)])
def test_bad_orders_raise(orders):
    with pytest.raises(ValueError, match="orders"):
        bleu([[1, 2]], [[1, 2]], orders=orders)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least 2 samples"):
        self_bleu([[1, 2, 3]])
    with pytest.raises(ValueError, match="at least one"):
        bleu([[1, 2]], [])
    with pytest.raises(ValueError, match="integer tensor"):
        bleu(torch.rand(2, 3), [[1]])
    with pytest.raises(ValueError, match="integer tensor"):
        bleu(torch.arange(3), [[1]])


# ----- speed (run with --benchmark-only -p no:xdist) -----


@pytest.fixture(scope="module")
def uniform_samples():
    """11,000 (1,000 + 10,000) uniform token sequences, V = 5000, T = 20."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5000, (11_000, 20), generator=g)  # (11000, 20)
    return x[:1000], x[1000:]


def test_benchmark_bleu_1000_vs_10000(benchmark, uniform_samples):
    hyps, refs = uniform_samples
    out = benchmark.pedantic(bleu, args=(hyps, refs), rounds=3, iterations=1)
    assert list(out) == list(ORDERS) and all(0.0 < v < 1.0 for v in out.values())


def test_benchmark_self_bleu_1000(benchmark, uniform_samples):
    out = benchmark.pedantic(self_bleu, args=(uniform_samples[0],), rounds=3, iterations=1)
    assert list(out) == list(ORDERS) and all(0.0 < v < 1.0 for v in out.values())


# ----- which samples the headline BLEU scores -----


def test_final_bleu_scores_all_final_samples_by_default_and_the_first_n_when_asked():
    from bench.config import BenchConfig
    from bench.metrics.evaluate import EvalSettings, eval_rng, final_metrics
    from oracle.data import Task
    from oracle.model import random_oracle

    assert BenchConfig().bleu_samples == 0  # the default: all final samples
    oracle = random_oracle(3, vocab_size=12, emb_dim=4, hidden_dim=4, seq_len=6)
    test = oracle.sample(40, rng=torch.Generator().manual_seed(1))  # (40, 6)
    task = Task(oracle, "tiny", test, test)
    device = torch.device("cpu")
    ev = EvalSettings(device, 7, 30, 30, 0, sweep_alphas=(1.0,), sweep_samples=30)
    everything, samples = final_metrics(oracle, task, ev)
    assert torch.equal(samples, oracle.sample_portable(30, rng=eval_rng(7)))
    assert everything["final/bleu4"] == bleu(samples.tolist(), test.tolist(), (4,))[4]
    assert everything["final/self_bleu3"] == self_bleu(samples.tolist(), (3,))[3]
    first, _ = final_metrics(oracle, task, dataclasses.replace(ev, bleu_samples=10))
    assert first["final/self_bleu3"] == self_bleu(samples[:10].tolist(), (3,))[3]
    assert first["final/self_bleu3"] != everything["final/self_bleu3"]
    assert first["final/nll_oracle"] == everything["final/nll_oracle"]  # BLEU's n only
