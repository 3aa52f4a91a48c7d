"""Shared fixtures: tiny tasks, the paper's oracle file, a migrated MLflow store per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from methods.generator import LSTMGenerator
from oracle.data import Task, _sample_split
from oracle.model import random_oracle

ROOT = Path(__file__).resolve().parents[1]
PAPER_ORACLE = (ROOT / ".." / "shared" / "seqgan-oracle" / "target_params_py3.pkl").resolve()


def tiny_task(vocab: int = 50, seq_len: int = 8, n: int = 256, seed: int = 1) -> Task:
    """A small oracle (V=50, E=H=8, T=8) with n training and n held-out samples."""
    oracle = random_oracle(seed, vocab_size=vocab, emb_dim=8, hidden_dim=8, seq_len=seq_len)
    ident = f"tiny-{seed}"
    return Task(
        oracle,
        ident,
        _sample_split(oracle, ident, "train", n),
        _sample_split(oracle, ident, "test", n),
    )


def tiny_generator(task: Task, seed: int = 0, std: float = 0.1) -> LSTMGenerator:
    o = task.oracle
    gen = LSTMGenerator(o.vocab_size, o.emb_dim, o.hidden_dim, o.seq_len)
    return gen.init_normal_(std, torch.Generator().manual_seed(seed))


def one_token_generator(task, token: int):
    """Every step puts all its mass on `token`: completions are deterministic."""
    gen = tiny_generator(task, std=1.0)
    with torch.no_grad():
        gen.out.weight.zero_()
        gen.out.bias.fill_(-1000.0)
        gen.out.bias[token] = 0.0
    return gen


@pytest.fixture
def task() -> Task:
    return tiny_task()


@pytest.fixture(scope="session")
def paper_oracle_path() -> Path:
    assert PAPER_ORACLE.exists(), f"the paper's oracle file is expected at {PAPER_ORACLE}"
    return PAPER_ORACLE


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables already migrated (migration costs ~7 s)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "template.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_uri(_mlflow_template, tmp_path) -> str:
    shutil.copy(_mlflow_template, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
