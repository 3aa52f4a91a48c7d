"""Evaluation of any SequenceModel on the task, with its own random stream; the metric names.

Names as logged to MLflow, where a run's page shows each metric's last value, so every name holds
one number or one learning curve: `learning_curve/*` (the cheap points, a history over update
steps), `final/*` (the headline numbers, once), `sweep/<metric>/a<alpha>` (one key per
temperature of the sweep, once each; `sweep_key`) and `perf/*`.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from bench.bleu import bleu, self_bleu
from bench.metrics import nll_oracle, nll_test
from methods.generator import SequenceModel
from oracle.data import Task

BLEU_ORDERS = (2, 3, 4, 5)
_SWEEP_KEY = re.compile(r"^(sweep/[\w.-]+)/a([^/]+)$")


def sweep_key(metric: str, alpha: float) -> str:
    """The MLflow key of one sweep metric at one alpha: 'sweep/nll_oracle/a0.5'. The alpha is
    written as its shortest round-trip repr, so `parse_sweep_key` returns the very float."""
    return f"{metric}/a{float(alpha)!r}"


def parse_sweep_key(key: str) -> tuple[str, float] | None:
    """(metric, alpha) of a `sweep_key`, None for any other key."""
    m = _SWEEP_KEY.match(key)
    if m is None:
        return None
    try:
        return m.group(1), float(m.group(2))
    except ValueError:
        return None


def eval_rng(seed: int, device: torch.device) -> torch.Generator:
    """A fresh evaluation stream: evaluation never consumes or depends on training randomness."""
    return torch.Generator(device=device).manual_seed(seed)


def curve_point(model: SequenceModel, task: Task, n: int, seed: int, device) -> dict[str, float]:
    """Cheap learning-curve point: NLL-oracle of n samples, NLL-test of n held-out sequences
    (`learning_curve/*`: fewer samples than `final_metrics`, so not its numbers)."""
    samples = model.sample(n, rng=eval_rng(seed, device))  # (n, T)
    return {
        "learning_curve/nll_oracle": nll_oracle(task.oracle, samples),
        "learning_curve/nll_test": nll_test(model, task.test[:n]),
    }


def final_metrics(
    model: SequenceModel, task: Task, n: int, n_bleu: int, seed: int, device
) -> tuple[dict[str, float], Tensor]:
    """Every headline metric, and the samples they were computed from (n, T). BLEU and
    Self-BLEU score the first n_bleu samples, all n when n_bleu is 0."""
    samples = model.sample(n, rng=eval_rng(seed, device))  # (n, T)
    out = {
        "final/nll_oracle": nll_oracle(task.oracle, samples),
        "final/nll_test": nll_test(model, task.test),
    }
    hyps = samples[: n_bleu or n].cpu()  # (n_bleu, T)
    out.update({f"final/bleu{k}": v for k, v in bleu(hyps, task.test, BLEU_ORDERS).items()})
    out.update({f"final/self_bleu{k}": v for k, v in self_bleu(hyps, BLEU_ORDERS).items()})
    return out, samples


def temperature_sweep(
    model: SequenceModel, task: Task, alphas: tuple[float, ...], n: int, seed: int, device
) -> list[tuple[float, dict[str, float]]]:
    """Quality and coverage with the logits multiplied by each alpha (temperature 1/alpha).

    Returns [(alpha, {'sweep/nll_oracle', 'sweep/nll_test'})]: NLL-oracle of n samples at that
    temperature (quality) and the scaled model's NLL of n held-out sequences (coverage), both
    lower-is-better. Every alpha uses the same evaluation stream (common random numbers).
    Logged under `sweep_key(metric, alpha)`, one key per alpha.
    """
    points = []
    for alpha in alphas:
        samples = model.sample(n, rng=eval_rng(seed, device), temperature=1 / alpha)  # (n, T)
        points.append(
            (
                alpha,
                {
                    "sweep/nll_oracle": nll_oracle(task.oracle, samples),
                    "sweep/nll_test": nll_test(model, task.test[:n], temperature=1 / alpha),
                },
            )
        )
    return points
