"""BLEU-n and Self-BLEU-n of token-id sequences, Texygen/nltk-compatible, computed with sacrebleu.

Each hypothesis is scored against the whole reference set, then averaged; Self-BLEU leaves each
sample out of its own references. The exact conventions: docs/bench.md, BLEU.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence

import torch
from sacrebleu.metrics import BLEU
from sacrebleu.metrics.helpers import extract_all_word_ngrams

SMOOTH_FLOOR = 0.1  # precision of an order with no match = 0.1 / total: nltk method1 (Texygen)
DEFAULT_ORDERS = (2, 3, 4, 5)  # BLEU-2..5 as reported by Texygen, RelGAN, LGFS

Sequences = torch.Tensor | Sequence[Sequence[int]]
NGram = tuple[str, ...]


def bleu(
    hypotheses: Sequences, references: Sequences, orders: Sequence[int] = DEFAULT_ORDERS
) -> dict[int, float]:
    """Mean sentence BLEU-n of each hypothesis against the whole reference set.

    hypotheses: (n_hyp, T) int64 tensor, or a sequence of variable-length token-id sequences.
    references: same, (n_ref, T'); e.g. held-out oracle samples.
    orders: the n of each BLEU-n (uniform weights over n-gram orders 1..n).
    Returns {n: BLEU-n} in the order requested, each in [0, 1]; higher = closer to references.
    """
    orders = _check_orders(orders)
    hyps, refs = _lines(hypotheses), _lines(references)
    if not hyps or not refs:
        raise ValueError("bleu needs at least one hypothesis and one reference")
    max_n = max(orders)
    table, lengths = _reference_table(refs, max_n)
    distinct_lengths = sorted(set(lengths))
    sums = dict.fromkeys(orders, 0.0)
    for line in hyps:
        ngrams, hyp_len = extract_all_word_ngrams(line, 1, max_n)
        correct, total = _match_counts(ngrams, table, max_n)
        ref_len = _closest_length(distinct_lengths, hyp_len)
        for n, score in _sentence_scores(correct, total, hyp_len, ref_len, orders).items():
            sums[n] += score
    return {n: sums[n] / len(hyps) for n in orders}


def self_bleu(samples: Sequences, orders: Sequence[int] = DEFAULT_ORDERS) -> dict[int, float]:
    """Mean BLEU-n of each sample against all the OTHER samples (leave-one-out).

    samples: (n, T) int64 tensor, or a sequence of variable-length token-id sequences; n >= 2.
    orders: the n of each Self-BLEU-n.
    Returns {n: Self-BLEU-n} in the order requested, each in [0, 1]; higher = less diverse
    (1.0 when every sample has a duplicate elsewhere in the set and has >= n tokens).
    """
    orders = _check_orders(orders)
    lines = _lines(samples)
    if len(lines) < 2:
        raise ValueError(f"self_bleu needs at least 2 samples, got {len(lines)}")
    max_n = max(orders)
    extracted = [extract_all_word_ngrams(line, 1, max_n) for line in lines]
    top, n_top, second = _top_two_counts([ngrams for ngrams, _ in extracted])
    length_counts = Counter(length for _, length in extracted)
    distinct_lengths = sorted(length_counts)
    sums = dict.fromkeys(orders, 0.0)
    for ngrams, hyp_len in extracted:
        # Clip by the largest count among the OTHER samples: the top count unless this sample is
        # the only one reaching it, in which case the runner-up count.
        clip = {
            g: top[g] if c < top[g] or n_top[g] > 1 else second.get(g, 0) for g, c in ngrams.items()
        }
        correct, total = _match_counts(ngrams, clip, max_n)
        ref_len = (
            hyp_len  # another sample has exactly this length
            if length_counts[hyp_len] > 1
            else _closest_length(_without(distinct_lengths, hyp_len), hyp_len)
        )
        for n, score in _sentence_scores(correct, total, hyp_len, ref_len, orders).items():
            sums[n] += score
    return {n: sums[n] / len(lines) for n in orders}


def _check_orders(orders: Sequence[int]) -> tuple[int, ...]:
    orders = tuple(orders)
    if not orders or any(not isinstance(n, int) or n < 1 for n in orders):
        raise ValueError(f"orders must be a non-empty sequence of ints >= 1, got {orders!r}")
    return orders


def _lines(sequences: Sequences) -> list[str]:
    """Token-id sequences -> space-joined strings, sacrebleu's tokenize="none" input."""
    if isinstance(sequences, torch.Tensor):
        if sequences.dim() != 2 or sequences.is_floating_point():
            raise ValueError(
                f"expected an (n, T) integer tensor, got {sequences.dtype} "
                f"of shape {tuple(sequences.shape)}"
            )
        sequences = sequences.tolist()
    return [" ".join(map(str, map(int, seq))) for seq in sequences]


def _reference_table(refs: list[str], max_n: int) -> tuple[dict[NGram, int], list[int]]:
    """n-gram -> its largest count in any single reference (orders 1..max_n), and ref lengths."""
    table: dict[NGram, int] = {}
    lengths = []
    for line in refs:
        ngrams, length = extract_all_word_ngrams(line, 1, max_n)
        lengths.append(length)
        for g, c in ngrams.items():
            if c > table.get(g, 0):
                table[g] = c
    return table, lengths


def _top_two_counts(
    counts: list[Counter],
) -> tuple[dict[NGram, int], dict[NGram, int], dict[NGram, int]]:
    """Per n-gram over samples: largest count, how many samples reach it, and the largest count
    strictly below it (absent = 0), which is all leave-one-out clipping needs."""
    top: dict[NGram, int] = {}
    n_top: dict[NGram, int] = {}
    second: dict[NGram, int] = {}
    for sample in counts:
        for g, c in sample.items():
            best = top.get(g, 0)
            if c > best:
                second[g], top[g], n_top[g] = best, c, 1
            elif c == best:
                n_top[g] += 1
            elif c > second.get(g, 0):
                second[g] = c
    return top, n_top, second


def _match_counts(ngrams: Counter, clip: dict[NGram, int], max_n: int) -> tuple[list, list]:
    """Clipped matches and hypothesis n-gram counts per order 1..max_n (sacrebleu's statistics)."""
    correct, total = [0] * max_n, [0] * max_n
    for g, c in ngrams.items():
        total[len(g) - 1] += c
        correct[len(g) - 1] += min(c, clip.get(g, 0))
    return correct, total


def _closest_length(distinct_lengths: list[int], hyp_len: int) -> int:
    """The sorted reference length closest to hyp_len, ties going to the shorter (nltk)."""
    j = bisect.bisect_left(distinct_lengths, hyp_len)
    neighbours = distinct_lengths[max(j - 1, 0) : j + 1]
    return min(neighbours, key=lambda r: (abs(r - hyp_len), r))


def _without(distinct_lengths: list[int], length: int) -> list[int]:
    """The sorted lengths minus `length` (present), keeping only its two neighbours: enough for
    _closest_length(., length)."""
    j = bisect.bisect_left(distinct_lengths, length)
    return distinct_lengths[max(j - 1, 0) : j] + distinct_lengths[j + 1 : j + 2]


def _sentence_scores(
    correct: list[int], total: list[int], hyp_len: int, ref_len: int, orders: tuple[int, ...]
) -> dict[int, float]:
    """Sentence BLEU-n for each n in orders from one hypothesis's statistics, in [0, 1]."""
    total = [max(t, 1) for t in total]  # nltk divides by max(1, count): short hyps score > 0
    return {
        n: BLEU.compute_bleu(
            correct[:n],
            total[:n],
            hyp_len,
            ref_len,
            smooth_method="floor",
            smooth_value=SMOOTH_FLOOR,
            max_ngram_order=n,
        ).score
        / 100.0
        for n in orders
    }
