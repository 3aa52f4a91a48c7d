"""The command line of `bench.run`: its options and their validation into a `Plan`."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
from pathlib import Path

from bench.cells.keys import code_versions_of
from bench.cells.plan import (
    SIZE_LIMIT,
    TIMEOUT_LIMIT,
    Plan,
    check_experiment,
    check_seed,
    pick_device,
)
from bench.config import PRESETS as BENCH_PRESETS
from bench.config import BenchConfig
from bench.help import epilog, group_help
from bench.store.tracker import default_uri
from bench.train.pretrain import PRESETS as PRETRAIN_PRESETS
from bench.train.pretrain import PretrainConfig
from methods import METHODS
from methods.base import PRESET_NAMES
from methods.config import ConfigError, build, check_seq_widths, train_batch_fields
from oracle.data import DEFAULT_PAPER_ORACLE, OracleSpec

ORACLES = ("random", "seqgan-paper")
DEVICES = ("auto", "cpu", "cuda")
SHARED = {  # option prefixes of the settings every method shares: prefix -> (Config, presets)
    "bench": (BenchConfig, BENCH_PRESETS, "settings shared by all methods"),
    "pretrain": (PretrainConfig, PRETRAIN_PRESETS, "the MLE pre-training every method starts from"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option gets one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m bench.run",
        usage="python -m bench.run [--methods M] [--seeds S] [--preset P] [options]",
        description="Train generators of discrete sequences with each method on the same LSTM, "
        "score them against a known LSTM oracle, track in MLflow and print a comparison table.",
        epilog=epilog(METHODS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--methods", default="all", help="comma-separated methods (below), or 'all'")
    p.add_argument(
        "--seeds",
        nargs="+",
        default=["1"],
        metavar="S",
        help="N: seeds 0..N-1 (default 1); several numbers, or '7,': those seeds",
    )
    p.add_argument(
        "--preset", default="quick", choices=PRESET_NAMES, help="budgets (below; default quick)"
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto: CUDA when present")
    p.add_argument(
        "--oracle",
        default="random",
        choices=ORACLES,
        help="a seeded N(0,1) LSTM, or the SeqGAN paper's parameter file",
    )
    p.add_argument(
        "--oracle-path",
        default=str(DEFAULT_PAPER_ORACLE),
        metavar="FILE",
        help="the paper's target_params_py3.pkl (docs/reproducing-the-paper.md)",
    )
    p.add_argument(
        "--oracle-seed",
        default=66,
        type=int,
        metavar="N",
        help="task seed of the random oracle (default 66, the original code's)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    p.add_argument("--experiment", default="seqgan-bench", metavar="NAME", help="MLflow experiment")
    p.add_argument(
        "--reports-dir", default="reports", metavar="DIR", help="reports go to DIR/<experiment>/"
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="cells on this machine, or one Ray task per cell (pip install '.[ray]')",
    )
    p.add_argument(
        "--jobs",
        default=1,
        type=int,
        metavar="N",
        help="local: N cells at once in worker processes, cores split among them",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="a running Ray cluster (default: start one)",
    )
    p.add_argument(
        "--force", action="store_true", help="re-run cells already finished in the store"
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print what each cell would do (reuse, resume, train) and its time estimate; "
        "train nothing",
    )
    p.add_argument(
        "--cache-dir",
        default=".cache",
        metavar="DIR",
        help="oracle data, pre-trainings, checkpoints, locks (default .cache)",
    )
    p.add_argument(
        "--help-options",
        metavar="NAME",
        help="NAME's options (a method, 'bench' or 'pretrain'), valued as in --preset",
    )
    for prefix, (cfg_cls, _, _) in SHARED.items():
        _add_config_options(p, prefix, cfg_cls)
    for name, spec in METHODS.items():
        _add_config_options(p, name, spec.config)
    return p


def _add_config_options(p: argparse.ArgumentParser, prefix: str, cfg_cls: type):
    """--PREFIX.FIELD for every field, parsed but left out of --help (--help-options shows them:
    21 methods' fields would be 1,500 lines)."""
    for f in dataclasses.fields(cfg_cls):
        p.add_argument(
            f"--{prefix}.{f.name.replace('_', '-')}",
            dest=f"cfg:{prefix}:{f.name}",
            default=None,
            help=argparse.SUPPRESS,
        )


def options_help(name: str, preset: str) -> str:
    """--help-options NAME's text, or a ConfigError naming what is valid."""
    groups = {p: (cfg, presets) for p, (cfg, presets, _) in SHARED.items()}
    groups |= {n: (spec.config, spec.presets) for n, spec in METHODS.items()}
    if name not in groups:
        raise ConfigError(
            f"--help-options {name!r}: choose a method ({', '.join(METHODS)}), 'bench' or "
            "'pretrain'"
        )
    return group_help(name, *groups[name], preset)


def parse_methods(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if names == ["all"]:
        return list(METHODS)
    valid = f"all, {', '.join(METHODS)}"
    if not any(names):
        raise ConfigError(f"--methods is empty; choose from {valid}")
    for n in names:
        if n not in METHODS:
            raise ConfigError(f"unknown method {n!r} in --methods; choose from {valid}")
        if names.count(n) > 1:
            raise ConfigError(f"method {n!r} is listed twice in --methods")
    return names


def parse_seeds(tokens: list[str]) -> list[int]:
    explicit = len(tokens) > 1 or "," in tokens[0]
    items = [t for tok in tokens for t in tok.split(",") if t.strip()]
    try:
        values = [int(t) for t in items]
    except ValueError:
        bad = next(t for t in items if not t.strip().lstrip("-").isdigit())
        raise ConfigError(f"--seeds {bad!r} is not an integer") from None
    if not values:
        raise ConfigError("--seeds is empty; give a count N or a list of seeds")
    if not explicit:
        if not 1 <= values[0] <= MAX_SEEDS:
            raise ConfigError(f"--seeds {values[0]}: a count of seeds must be in 1..{MAX_SEEDS}")
        return list(range(values[0]))
    if any(v < 0 for v in values) or len(set(values)) != len(values):
        raise ConfigError(f"--seeds {','.join(items)}: seeds must be distinct and >= 0")
    for v in values:
        check_seed(v, "--seeds")
    return values


MAX_SEEDS = 10_000  # a count beyond it is a typo: 10,000 seeds of one method are weeks of CPU
SIZES = ("n_train", "n_test", "curve_samples", "final_samples", "bleu_samples", "sweep_samples")


def check_limits(bench: BenchConfig) -> None:
    """Refuse shared settings that would overflow what they feed or exhaust memory."""
    check_seed(bench.eval_seed, "--bench.eval-seed")
    for name in SIZES:
        if getattr(bench, name) > SIZE_LIMIT:
            flag = f"--bench.{name.replace('_', '-')}"
            raise ConfigError(
                f"{flag} {getattr(bench, name)}: at most {SIZE_LIMIT:,} sequences "
                "(1.6 GB of tokens at T = 20)"
            )
    if bench.cell_timeout > TIMEOUT_LIMIT:
        raise ConfigError(
            f"--bench.cell-timeout {bench.cell_timeout:g}: at most {TIMEOUT_LIMIT:g} s "
            "(116 days); 0 = no limit"
        )


def check_batches(configs: dict[str, object], n_train: int) -> None:
    """Refuse a minibatch larger than the training set: its epoch would make no update."""
    for prefix, cfg in configs.items():
        for name, size in train_batch_fields(cfg).items():
            if size > n_train:
                raise ConfigError(
                    f"--{prefix}.{name.replace('_', '-')}={size} exceeds --bench.n-train="
                    f"{n_train}: a minibatch must fit in the training set"
                )


def make_plan(argv: list[str] | None) -> Plan:
    args = build_parser().parse_args(argv)
    if args.help_options is not None:
        print(options_help(args.help_options, args.preset))
        raise SystemExit(0)
    overrides: dict[str, dict[str, str]] = {}
    for dest, value in vars(args).items():
        if dest.startswith("cfg:") and value is not None:
            _, prefix, name = dest.split(":")
            overrides.setdefault(prefix, {})[name] = value
    methods = parse_methods(args.methods)
    check_experiment(args.experiment)
    check_seed(args.oracle_seed, "--oracle-seed")
    for prefix, fields in overrides.items():
        if prefix not in (*SHARED, *methods):
            flag = f"--{prefix}.{next(iter(fields)).replace('_', '-')}"
            raise ConfigError(f"{flag} applies to method {prefix!r}, which is not in --methods")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be >= 1")
    if args.jobs > 1 and args.executor != "local":
        raise ConfigError(f"--jobs {args.jobs} applies to --executor local; Ray sizes itself")
    shared = {
        prefix: build(cfg_cls, prefix, presets[args.preset], overrides.get(prefix, {}))
        for prefix, (cfg_cls, presets, _) in SHARED.items()
    }
    configs = {
        name: build(
            METHODS[name].config, name, METHODS[name].presets[args.preset], overrides.get(name, {})
        )
        for name in methods
    }
    check_limits(shared["bench"])
    check_batches({"pretrain": shared["pretrain"], **configs}, shared["bench"].n_train)
    oracle = OracleSpec(kind=args.oracle, seed=args.oracle_seed, path=args.oracle_path)
    for name, cfg in configs.items():  # before anything runs, not when its trainer is built
        check_seq_widths(cfg, name, oracle.seq_len)
    return Plan(
        methods=methods,
        seeds=parse_seeds(args.seeds),
        preset=args.preset,
        device=pick_device(args.device),
        oracle=oracle,
        tracking_uri=args.tracking_uri or default_uri(),
        experiment=args.experiment,
        reports_dir=Path(args.reports_dir),
        cache_dir=Path(args.cache_dir),
        bench=shared["bench"],
        pretrain=shared["pretrain"],
        configs=configs,
        force=args.force,
        executor=args.executor,
        ray_address=args.ray_address,
        jobs=args.jobs,
        plan_only=args.plan,
        code=code_versions_of({name: METHODS[name] for name in methods}),  # once, not per key
        command=shlex.join(["python", "-m", "bench.run", *(argv or sys.argv[1:])]),
    )


def check_writable(path: Path, what: str, option: str) -> None:
    """Fail before any work when `path` (a directory) cannot be created or written. A probe:
    the directories it had to create are removed again, so a refused run leaves nothing."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    probe = path / ".write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
    except OSError as e:
        raise ConfigError(
            f"{what} directory {str(path)!r} is not writable ({e.strerror}); pass {option}"
        ) from None
    finally:
        with contextlib.suppress(OSError):  # on a full disk the probe exists, empty
            probe.unlink(missing_ok=True)
        for p in created:  # deepest first
            if p.is_dir():
                p.rmdir()
