"""Evaluation of any SequenceModel on the task, with its own random stream."""

from __future__ import annotations

import torch
from torch import Tensor

from bench.bleu import bleu, self_bleu
from bench.metrics import nll_oracle, nll_test
from methods.generator import SequenceModel
from oracle.data import Task

BLEU_ORDERS = (2, 3, 4, 5)


def eval_rng(seed: int, device: torch.device) -> torch.Generator:
    """A fresh evaluation stream: evaluation never consumes or depends on training randomness."""
    return torch.Generator(device=device).manual_seed(seed)


def curve_point(model: SequenceModel, task: Task, n: int, seed: int, device) -> dict[str, float]:
    """Cheap learning-curve point: NLL-oracle of n samples, NLL-test of n held-out sequences."""
    samples = model.sample(n, rng=eval_rng(seed, device))  # (n, T)
    return {
        "eval/nll_oracle": nll_oracle(task.oracle, samples),
        "eval/nll_test": nll_test(model, task.test[:n]),
    }


def final_metrics(
    model: SequenceModel, task: Task, n: int, n_bleu: int, seed: int, device
) -> tuple[dict[str, float], Tensor]:
    """Every headline metric, and the samples they were computed from (n, T)."""
    samples = model.sample(n, rng=eval_rng(seed, device))  # (n, T)
    out = {
        "final/nll_oracle": nll_oracle(task.oracle, samples),
        "final/nll_test": nll_test(model, task.test),
    }
    hyps = samples[:n_bleu].cpu()
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
