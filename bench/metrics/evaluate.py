"""A model scored on the task: curve points, final metrics, the temperature sweep; metric names.

Names as logged to MLflow, where a run's page shows each metric's last value, so every name holds
one number or one learning curve: `learning_curve/*` (the cheap points, a history over update
steps), `final/*` (the headline numbers, once), `sweep/<metric>/a<alpha>` (one key per
temperature of the sweep, once each; `sweep_key`) and `perf/*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bench.config import BenchConfig
from bench.metrics.bleu import bleu, self_bleu
from bench.metrics.nll import nll_oracle, nll_test
from methods.generator import SequenceModel, UnigramModel
from oracle.data import Task

BLEU_ORDERS = (2, 3, 4, 5)
_SWEEP_KEY = re.compile(r"^(sweep/[\w.-]+)/a([^/]+)$")


@dataclass(frozen=True)
class EvalSettings:
    """How every model is scored: sample counts, the evaluation seed, the device."""

    device: torch.device
    seed: int
    curve_samples: int
    final_samples: int
    bleu_samples: int  # 0: all final samples
    sweep_alphas: tuple[float, ...]
    sweep_samples: int

    @classmethod
    def of(cls, settings: BenchConfig, device) -> EvalSettings:
        return cls(
            device=torch.device(device),
            seed=settings.eval_seed,
            curve_samples=settings.curve_samples,
            final_samples=settings.final_samples,
            bleu_samples=settings.bleu_samples,
            sweep_alphas=settings.sweep_alphas,
            sweep_samples=settings.sweep_samples,
        )


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


def curve_point(model: SequenceModel, task: Task, ev: EvalSettings) -> dict[str, float]:
    """Cheap learning-curve point: NLL-oracle of n = curve_samples samples, NLL-test of n
    held-out sequences (`learning_curve/*`: fewer samples than `final_metrics`, so not its
    numbers). Both lower is better."""
    n = ev.curve_samples
    samples = model.sample(n, rng=eval_rng(ev.seed, ev.device))  # (n, T)
    return {
        "learning_curve/nll_oracle": nll_oracle(task.oracle, samples),
        "learning_curve/nll_test": nll_test(model, task.test[:n]),
    }


def final_metrics(
    model: SequenceModel, task: Task, ev: EvalSettings
) -> tuple[dict[str, float], Tensor]:
    """Every headline metric, and the samples they were computed from (n, T), n =
    final_samples. BLEU and Self-BLEU score the first bleu_samples samples, all n when it is 0."""
    n, n_bleu = ev.final_samples, ev.bleu_samples
    samples = model.sample(n, rng=eval_rng(ev.seed, ev.device))  # (n, T)
    out = {
        "final/nll_oracle": nll_oracle(task.oracle, samples),
        "final/nll_test": nll_test(model, task.test),
    }
    hyps = samples[: n_bleu or n].cpu()  # (n_bleu, T)
    out.update({f"final/bleu{k}": v for k, v in bleu(hyps, task.test, BLEU_ORDERS).items()})
    out.update({f"final/self_bleu{k}": v for k, v in self_bleu(hyps, BLEU_ORDERS).items()})
    return out, samples


def temperature_sweep(
    model: SequenceModel, task: Task, ev: EvalSettings
) -> list[tuple[float, dict[str, float]]]:
    """Quality and coverage with the logits multiplied by each alpha (temperature 1/alpha).

    Returns [(alpha, {'sweep/nll_oracle', 'sweep/nll_test'})] for each of `ev.sweep_alphas`:
    NLL-oracle of n = sweep_samples samples at that
    temperature (quality) and the scaled model's NLL of n held-out sequences (coverage), both
    lower-is-better. Every alpha uses the same evaluation stream (common random numbers).
    Logged under `sweep_key(metric, alpha)`, one key per alpha.
    """
    points, n = [], ev.sweep_samples
    for alpha in ev.sweep_alphas:
        samples = model.sample(n, rng=eval_rng(ev.seed, ev.device), temperature=1 / alpha)  # (n, T)
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


def sweep_best(alphas, oracle_nlls, test_nlls) -> tuple[float, float]:
    """The best point of one (method, seed)'s sweep: (least NLL-oracle + NLL-test, its alpha).

    `alphas`, `oracle_nlls`, `test_nlls`: (k,) arrays, one entry per alpha (any order). Lower sum
    is better; the alpha is a location (no direction); ties go to the first entry; NaNs skipped.
    """
    total = np.asarray(oracle_nlls, float) + np.asarray(test_nlls, float)  # (k,)
    i = int(np.nanargmin(total))
    return float(total[i]), float(np.asarray(alphas, float)[i])


def sweep_metrics(model: SequenceModel, task: Task, ev: EvalSettings) -> dict[str, float]:
    """The temperature sweep as logged: every `sweep_key` metric, sweep/best_sum and
    sweep/best_alpha."""
    points = temperature_sweep(model, task, ev)
    metrics = {sweep_key(k, alpha): v for alpha, point in points for k, v in point.items()}
    best_sum, best_alpha = sweep_best(
        [alpha for alpha, _ in points],
        [point["sweep/nll_oracle"] for _, point in points],
        [point["sweep/nll_test"] for _, point in points],
    )
    return metrics | {"sweep/best_sum": best_sum, "sweep/best_alpha": best_alpha}


def reference_models(task: Task) -> dict[str, SequenceModel]:
    """Reference rows: the oracle itself (the floor), its unigram marginal, uniform tokens."""
    return {
        "oracle": task.oracle,
        "unigram": UnigramModel.from_counts(task.train, task.vocab_size),
        "uniform": UnigramModel.uniform(task.vocab_size, task.seq_len),
    }
