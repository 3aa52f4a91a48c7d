"""The oracle LSTM: a seeded N(0,1) one, or the SeqGAN paper's own parameter file.

The oracle is an `LSTMGenerator` with frozen weights, so it samples and scores sequences
through the same code as the generator it judges.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from methods.generator import LSTMGenerator


class OracleFileError(ValueError):
    """The oracle parameter file is missing, unreadable, unsafe or of the wrong shape."""


def random_oracle(
    seed: int, vocab_size: int = 5000, emb_dim: int = 32, hidden_dim: int = 32, seq_len: int = 20
) -> LSTMGenerator:
    """An oracle with every parameter ~ N(0, 1) drawn from `seed` (the task seed), as the paper."""
    model = LSTMGenerator(vocab_size, emb_dim, hidden_dim, seq_len)
    model.init_normal_(1.0, torch.Generator().manual_seed(seed))
    return model.requires_grad_(False).eval()


def parameter_digest(model: torch.nn.Module) -> str:
    """Short sha256 of the parameters: part of the oracle identity (and of its data cache key)."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


# ----- the paper's file: a pickle of 15 float32 arrays; loading must never run code from it -----
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_NAMES = [
    "E",
    "Wi",
    "Ui",
    "bi",
    "Wf",
    "Uf",
    "bf",
    "Wog",
    "Uog",
    "bog",
    "Wc",
    "Uc",
    "bc",
    "Wo",
    "bo",
]


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise OracleFileError(
                f"refusing to unpickle global {module}.{name}: an oracle file may only reference "
                "numpy arrays (numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype)"
            )
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, either path
        return getattr(np, name)


def _read_arrays(path: Path) -> list[np.ndarray]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise OracleFileError(f"cannot read oracle file {str(path)!r}: {e.strerror}") from None
    try:
        arrays = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except OracleFileError as e:
        raise OracleFileError(f"oracle file {str(path)!r}: {e}") from None
    except Exception as e:  # truncated or not a pickle at all: pickle raises many types
        raise OracleFileError(
            f"oracle file {str(path)!r} is not a valid pickle of 15 numpy arrays "
            f"({type(e).__name__}: {e})"
        ) from None
    if not isinstance(arrays, list | tuple) or len(arrays) != 15:
        raise OracleFileError(
            f"oracle file {str(path)!r} must hold a list of 15 arrays ({', '.join(_NAMES)})"
        )
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise OracleFileError(f"oracle file {str(path)!r}: every entry must be a numpy array")
    return arrays


def _check_shapes(arrays: list[np.ndarray], path: Path) -> tuple[int, int, int]:
    vocab, emb = arrays[0].shape if arrays[0].ndim == 2 else (0, 0)
    hidden = arrays[2].shape[0] if arrays[2].ndim == 2 else 0
    gate = [(emb, hidden), (hidden, hidden), (hidden,)]
    expected = [(vocab, emb), *gate * 4, (hidden, vocab), (vocab,)]
    for name, a, shape in zip(_NAMES, arrays, expected, strict=True):
        if a.shape != shape or min(shape, default=1) == 0:
            raise OracleFileError(
                f"oracle file {str(path)!r}: array {name} has shape {a.shape}, expected {shape} "
                f"(from E {arrays[0].shape} and Ui {arrays[2].shape})"
            )
    return vocab, emb, hidden


def load_paper_oracle(path: str | Path, seq_len: int = 20) -> LSTMGenerator:
    """The SeqGAN paper's oracle from `target_params_py3.pkl` (format in shared/seqgan-oracle).

    Its gates i, f, o, c~ map onto nn.LSTM's (i, f, g, o) rows; its single bias goes to bias_ih.
    """
    path = Path(path)
    arrays = _read_arrays(path)
    vocab, emb, hidden = _check_shapes(arrays, path)
    t = {
        n: torch.from_numpy(np.asarray(a, dtype=np.float32))
        for n, a in zip(_NAMES, arrays, strict=True)
    }
    model = LSTMGenerator(vocab, emb, hidden, seq_len)
    with torch.no_grad():
        model.embedding.weight.copy_(t["E"])
        model.lstm.weight_ih_l0.copy_(torch.cat([t["Wi"], t["Wf"], t["Wc"], t["Wog"]], 1).T)
        model.lstm.weight_hh_l0.copy_(torch.cat([t["Ui"], t["Uf"], t["Uc"], t["Uog"]], 1).T)
        model.lstm.bias_ih_l0.copy_(torch.cat([t["bi"], t["bf"], t["bc"], t["bog"]]))
        model.lstm.bias_hh_l0.zero_()
        model.out.weight.copy_(t["Wo"].T)
        model.out.bias.copy_(t["bo"])
    return model.requires_grad_(False).eval()


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
