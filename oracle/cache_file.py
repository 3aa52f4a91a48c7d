"""Cache files that verify themselves: the task data, pre-trainings and cell checkpoints.

A file is a header line, `seqgan-bench-cache sha256=<hex>`, then the bytes of `torch.save(obj)`;
loading checks the digest before unpickling anything, so a damaged or truncated file (a bit
flip, a full disk, a copy cut short) is reported, never silently used. Written atomically: a
unique temporary file renamed into place, so a killed writer leaves the previous file (and, if
SIGKILLed, a `*.tmp` beside it), and a failed write (a full disk) removes its temporary file.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

MAGIC = b"seqgan-bench-cache sha256="


class CacheFileError(ValueError):
    """A cache file that is damaged, truncated or of another format; the message names it."""


def save_verified(obj: Any, path: Path) -> None:
    """torch.save `obj` to `path` behind its digest, atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # unique: parallel workers may race
    try:
        tmp.write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        tmp.replace(path)
    except BaseException:  # a full disk, Ctrl-C: no partial file (a SIGKILL can leave a *.tmp)
        tmp.unlink(missing_ok=True)
        raise


def load_verified(path: Path, **load_args: Any) -> Any:
    """The object saved at `path` (`load_args` go to torch.load), or CacheFileError when its
    bytes do not match their digest."""
    data = Path(path).read_bytes()
    header, _, payload = data.partition(b"\n")
    if not header.startswith(MAGIC):
        raise CacheFileError(f"cache file {path} is not a verified cache file (another format)")
    if hashlib.sha256(payload).hexdigest().encode() != header[len(MAGIC) :]:
        raise CacheFileError(
            f"cache file {path} is damaged (its content does not match its digest)"
        )
    return torch.load(io.BytesIO(payload), **load_args)
