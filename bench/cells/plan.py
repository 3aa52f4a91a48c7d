"""The resolved plan of an invocation, its device, and what its cells share at run time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.config import BenchConfig
from bench.store.tracker import Tracker
from bench.train.pretrain import PretrainConfig, Pretraining
from methods.config import ConfigError
from oracle.data import OracleSpec, Task


@dataclass
class Plan:
    """Everything one invocation will do, resolved and validated before any work starts."""

    methods: list[str]
    seeds: list[int]
    preset: str
    device: torch.device
    oracle: OracleSpec
    tracking_uri: str
    experiment: str
    reports_dir: Path
    cache_dir: Path
    bench: BenchConfig
    pretrain: PretrainConfig  # the shared MLE pre-training of every cell
    configs: dict[str, object]  # method name -> its resolved Config, for the methods run
    command: str
    # 'pretrain', 'reference' and each method -> its code version (bench.cells.keys)
    code: dict[str, str] = field(default_factory=dict)
    force: bool = False  # re-run cells already finished in the store
    executor: str = "local"  # local: cells one after another here; ray: one Ray task per cell
    ray_address: str | None = None  # None starts a local Ray cluster
    jobs: int = 1  # local executor: cells run in this many worker processes at once
    plan_only: bool = False  # --plan: print what each cell would do and exit, training nothing

    def pretraining(self, task: Task) -> Pretraining:
        """The shared pre-training of this plan's cells on `task`."""
        return Pretraining(
            self.pretrain, task, self.bench, self.device, self.cache_dir, self.code["pretrain"]
        )


# the bounds of what the command line feeds: beyond them a value overflows what it is fed to
# (torch's and numpy's seeds, setitimer) or asks for memory no machine has
SEED_LIMIT = 2**32  # seeds in [0, SEED_LIMIT): what numpy and torch both accept
SIZE_LIMIT = 10_000_000  # sequences in one set: 1.6 GB of int64 tokens at T = 20
TIMEOUT_LIMIT = 1e7  # seconds of a cell's time limit: 116 days
NAME_LIMIT = 100  # characters of an experiment name, which is also a directory name


def check_experiment(name: str, option: str = "--experiment") -> str:
    """`name`, or ConfigError: it names a directory under the reports directory, so it must be
    one path component (no separator, not '.' or '..', no NUL) of 1 to NAME_LIMIT characters
    and not start with '-' or a space. Nothing outside the reports directory is ever written."""
    bad = (
        not name
        or len(name) > NAME_LIMIT
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
        or name[0] in "- "
        or name != name.strip()
    )
    if bad:
        raise ConfigError(
            f"{option} {name[:NAME_LIMIT]!r} is not a valid experiment name: it names a "
            f"directory, so 1-{NAME_LIMIT} characters, no '/', '\\' or NUL, not '.' or '..', "
            "no leading '-' or surrounding spaces"
        )
    return name


def check_seed(value: int, option: str) -> int:
    """`value`, or ConfigError unless 0 <= value < SEED_LIMIT."""
    if not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{option} {value}: a seed must be in [0, 2**32)")
    return value


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when present), 'cpu' or 'cuda'; ConfigError for CUDA where there is none."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Invocation:
    """What the cells of one `bench.run` invocation share: its plan, task, store and parent run."""

    plan: Plan
    task: Task
    tracker: Tracker
    parent: str  # the invocation's MLflow parent run
    tags: dict[str, str]  # environment and task tags every run of the invocation carries
