"""The task: oracle + training set + held-out set, sampled deterministically and cached on disk.

The task seed (oracle weights and its data) is independent of the replicate seed (training) and
of the evaluation seed: changing how a method trains never changes the data it is judged on.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from methods.generator import LSTMGenerator
from oracle.cache_file import CacheFileError, load_verified, save_verified
from oracle.model import file_digest, load_paper_oracle, parameter_digest, random_oracle

DEFAULT_PAPER_ORACLE = Path("../shared/seqgan-oracle/target_params_py3.pkl")

# the code that draws the task data: the oracle's construction and loading, this module's split
# seeds, and the generator's `sample` (the oracle is an LSTMGenerator)
SAMPLING_CODE = ("oracle/data.py", "oracle/model.py", "methods/generator.py")


@dataclass(frozen=True)
class OracleSpec:
    """Which oracle defines the task."""

    kind: Literal["random", "seqgan-paper"] = "random"
    seed: int = 66  # task seed of the random oracle (66: the original code's graph seed)
    path: str = str(DEFAULT_PAPER_ORACLE)  # the paper's parameter file, for kind="seqgan-paper"
    vocab_size: int = 5000  # paper: 5000
    emb_dim: int = 32  # paper: 32
    hidden_dim: int = 32  # paper: 32
    seq_len: int = 20  # paper: 20


@dataclass
class Task:
    oracle: LSTMGenerator
    identity: str  # names the oracle exactly: kind + parameter digest
    train: Tensor  # (n_train, T) int64 oracle samples: the training data
    test: Tensor  # (n_test, T) int64 oracle samples, disjoint draws: held-out data
    _memo: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """`compute()`, once per key for this task: for what every cell on it would compute
        alike (the oracle's held-out log-likelihoods, the pre-trained generator's step 0)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def heldout_log_prob(self, n: int | None = None) -> Tensor:
        """(n,) the oracle's log-likelihood of the first n held-out sequences (all of them when
        None), computed once per n."""
        n = self.test.shape[0] if n is None else n
        return self.memo(("heldout_log_prob", n), lambda: self.oracle.log_prob(self.test[:n]))

    @property
    def data_digest(self) -> str:
        """Short sha256 of the training and held-out tokens (int64, row-major): the same on every
        CPU and device for one identity and split sizes (`_sample_split`). Tagged `task_data`."""
        digest = hashlib.sha256()
        for split in (self.train, self.test):
            digest.update(split.to("cpu", torch.int64).contiguous().numpy().tobytes())
        return digest.hexdigest()[:12]

    @property
    def vocab_size(self) -> int:
        return self.oracle.vocab_size

    @property
    def seq_len(self) -> int:
        return self.oracle.seq_len


def build_oracle(spec: OracleSpec) -> tuple[LSTMGenerator, str]:
    if spec.kind == "seqgan-paper":
        model = load_paper_oracle(spec.path, spec.seq_len)
        return model, f"seqgan-paper-{file_digest(spec.path)}"
    model = random_oracle(spec.seed, spec.vocab_size, spec.emb_dim, spec.hidden_dim, spec.seq_len)
    return model, f"random-s{spec.seed}-{parameter_digest(model)}"


def _split_seed(identity: str, split: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{identity}/{split}".encode()).digest()[:8], "little")


def _sample_split(oracle: LSTMGenerator, identity: str, split: str, n: int) -> Tensor:
    """Oracle samples for one split, drawn by `sample_portable` (float64 on CPU), so the data are
    the same on every CPU and device."""
    rng = torch.Generator().manual_seed(_split_seed(identity, split))
    return oracle.sample_portable(n, rng=rng)


def validation_split(task: Task, n: int) -> Tensor:
    """n oracle samples drawn with the validation split's own seed (independent of the train and
    test draws), minus any row that also occurs in train or test, so the three are disjoint:
    (n_valid, T) int64 with n_valid <= n. Only early stopping reads it; it is not cached."""
    valid = _sample_split(task.oracle, task.identity, "valid", n)  # (n, T)
    seen = {tuple(row) for row in torch.cat([task.train, task.test]).tolist()}
    keep = torch.tensor([tuple(row) not in seen for row in valid.tolist()], dtype=torch.bool)
    return valid[keep]


def sampling_code_version(root: Path | None = None) -> str:
    """A hash of the files in `SAMPLING_CODE` (under the project root) and of torch's version:
    a cache drawn by other sampling code, or another torch, is never reused."""
    root = root or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(torch.__version__.encode())
    for name in SAMPLING_CODE:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def data_cache_path(
    identity: str, n_train: int, n_test: int, cache_dir: Path, code: str | None = None
) -> Path:
    """The task data's cache file: keyed by oracle identity, split sizes and sampling code."""
    code = code or sampling_code_version()
    return Path(cache_dir) / f"data-{identity}-train{n_train}-test{n_test}-code{code}.pt"


def load_task(spec: OracleSpec, n_train: int, n_test: int, cache_dir: Path) -> Task:
    """Build the oracle and load (or sample once and cache) its training and held-out sets."""
    oracle, identity = build_oracle(spec)
    path = data_cache_path(identity, n_train, n_test, cache_dir)
    data = None
    if path.exists():
        try:
            data = load_verified(path)
        except CacheFileError as e:  # damaged: the data are sampled again, never used
            print(f"bench: {e}; sampling the task data again", file=sys.stderr)
    if data is None:
        data = {
            "train": _sample_split(oracle, identity, "train", n_train).int(),
            "test": _sample_split(oracle, identity, "test", n_test).int(),
        }
        save_verified(data, path)
    return Task(oracle, identity, data["train"].long(), data["test"].long())
