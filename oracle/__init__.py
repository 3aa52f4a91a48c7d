"""The task: a known LSTM oracle, its training data and its held-out data."""

from oracle.data import OracleSpec, Task, load_task
from oracle.model import OracleFileError, load_paper_oracle, random_oracle

__all__ = [
    "OracleFileError",
    "OracleSpec",
    "Task",
    "load_paper_oracle",
    "load_task",
    "random_oracle",
]
