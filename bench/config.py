"""Settings shared by every method: data sizes, evaluation sizes and seeds, fault bounds."""

from __future__ import annotations

from dataclasses import dataclass

from methods.config import hp


@dataclass(frozen=True)
class BenchConfig:
    n_train: int = hp(
        10_000,
        "oracle samples in the training set",
        source="paper text: 10,000 (the original code keeps 9,984)",
        check="positive",
    )
    n_test: int = hp(
        10_000,
        "oracle samples in the held-out set (NLL-test, BLEU references)",
        source="Caccia et al. use a held-out oracle set of the same size",
        check="positive",
    )
    curve_samples: int = hp(
        2_000,
        "generator samples per learning-curve evaluation",
        source="tuning: a cheap point every eval-every updates (docs/bench.md, Evaluation costs)",
        check="positive",
    )
    final_samples: int = hp(
        10_000,
        "generator samples for the final NLL-oracle",
        source="original code: 9,984 (paper text: 100,000)",
        check="positive",
    )
    bleu_samples: int = hp(
        0,
        "final samples scored by BLEU and Self-BLEU (the first n of them); 0 = all of them",
        source="all of them: sacrebleu's counts (bench/metrics/bleu.py) make a subset buy "
        "nothing (docs/bench.md, Evaluation costs)",
        check="nonneg",
    )
    eval_seed: int = hp(
        12345,
        "seed of every evaluation draw; the same for all methods and "
        "replicates, so their samples share random numbers",
        source="an arbitrary fixed value",
        check="nonneg",
    )
    sweep_alphas: tuple[float, ...] = hp(
        (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0),
        "logit multipliers alpha of the temperature sweep (alpha > 1 is colder), comma-separated",
        source="Caccia et al. 2020 sweep alpha over 0.1..2.5; a dozen points around 1 suffice",
        check="positive",
        items=float,
    )
    sweep_samples: int = hp(
        1_000,
        "generator samples (and held-out sequences) per alpha of the temperature sweep",
        source="tuning: enough for a curve, cheap (docs/bench.md, Evaluation costs)",
        check="positive",
    )
    checkpoint_every: int = hp(
        10,
        "generator updates between checkpoints of a cell's training state (taken at the next "
        "evaluation; a killed cell resumes from its last one); 0 = never",
        source="a checkpoint costs far less than 10 paper-preset SeqGAN updates (docs/bench.md)",
        check="nonneg",
    )
    cell_timeout: float = hp(
        0.0,
        "wall-clock seconds after which a cell is stopped and recorded 'timeout' (its "
        "checkpoint kept: a rerun resumes it); with --jobs, a worker still alive 30 s later "
        "is killed; 0 = no limit",
        source="a guard against a hung cell blocking the run, not a tuned value",
        check="nonneg",
    )
    max_abs_loss: float = hp(
        1e6,
        "a training scalar (train/*: losses, norms) beyond this magnitude marks the cell "
        "diverged; perf/* timings need only be finite",
        source="a guard, not a tuned value",
        check="positive",
    )


PRESETS: dict[str, dict] = {
    "smoke": dict(
        sweep_alphas=(0.5, 1.0, 2.0),
        sweep_samples=200,
        n_train=1_000,
        n_test=1_000,
        curve_samples=300,
        final_samples=1_000,
        bleu_samples=100,
    ),
    "quick": {},
    # long: the original code's 9,984 training sequences, so pre-training is its recipe exactly
    "long": dict(n_train=9_984),
    "paper": dict(n_train=9_984, final_samples=9_984),
}
