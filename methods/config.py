"""Hyperparameter fields with help text, provenance and validity checks, and CLI overrides.

Every hyperparameter lives in its method's frozen Config dataclass, declared with `hp(...)`, so
`--help`, validation and the MLflow params all come from that one place.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "positive": (lambda v: v > 0, "must be > 0"),
    "nonneg": (lambda v: v >= 0, "must be >= 0"),
    "unit": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "ge1": (lambda v: v >= 1, "must be >= 1"),
    "alphas": (lambda v: _floats_ok(v), "must be a non-empty comma list of numbers > 0"),
    "ints": (lambda v: _ints_ok(v), "must be a non-empty comma list of integers > 0"),
}


def parse_floats(text: str) -> tuple[float, ...]:
    """'0.5, 1,2.0' -> (0.5, 1.0, 2.0); ValueError if any item is not a number."""
    return tuple(float(v) for v in text.replace(",", " ").split())


def _floats_ok(text: str) -> bool:
    try:
        values = parse_floats(text)
    except ValueError:
        return False
    return bool(values) and all(v > 0 for v in values)


def _ints_ok(text: str) -> bool:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        return False
    return bool(values) and all(v > 0 for v in values)


class ConfigError(ValueError):
    """A hyperparameter value that is invalid; the message names it and what is valid."""


def parse_ints(text: str, flag: str) -> tuple[int, ...]:
    """'2,3,5' -> (2, 3, 5), or a one-line ConfigError naming the flag."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag}={text!r} is not valid: comma-separated ints") from None


def check_widths(widths: tuple[int, ...], seq_len: int, flag: str) -> tuple[int, ...]:
    """Convolution widths, unchanged, or a ConfigError if one exceeds the sequence length T:
    the windows of a wider filter would not fit in any sequence. Known only once the task is
    loaded (the oracle fixes T), so the trainers call this, not `validate`."""
    if max(widths) > seq_len:
        text = ",".join(map(str, widths))
        raise ConfigError(f"{flag}={text!r} is not valid: widths must be <= T = {seq_len}")
    return widths


def hp(
    default: Any,
    help: str,
    *,
    source: str = "",
    check: str | None = None,
    choices=None,
    batch_of_train: bool = False,
    within_seq_len: bool = False,
):
    """A config field: `help` is the --help text, `source` where the default comes from.

    `batch_of_train`: the field is a minibatch size drawn from the training set, so the CLI
    refuses a value above --bench.n-train (an epoch of zero updates). `within_seq_len`: a comma
    list of convolution widths, each of which must be <= the task's sequence length T."""
    meta = {"help": f"{help} (default {default!r}; {source})" if source else help}
    meta.update(
        check=check, choices=choices, batch_of_train=batch_of_train, within_seq_len=within_seq_len
    )
    return dataclasses.field(default=default, metadata=meta)


def validate(cfg: Any, prefix: str) -> None:
    """Raise ConfigError for the first field of `cfg` that fails its check."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        flag = f"--{prefix}.{f.name.replace('_', '-')}"
        if isinstance(value, float) and not math.isfinite(value):  # no rate or weight is inf
            raise ConfigError(f"{flag}={value!r} is not valid: must be a finite number")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{flag}={value!r} is not valid; choose from {', '.join(choices)}")
        check = f.metadata.get("check")
        if check is not None and not CHECKS[check][0](value):
            raise ConfigError(f"{flag}={value!r} is not valid: {CHECKS[check][1]}")


def parse_value(text: str, kind: type, flag: str) -> Any:
    """Parse one CLI string into the field's type, with a one-line error naming the flag."""
    try:
        if kind is bool:
            if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return text.lower() in {"true", "1", "yes"}
        return kind(text)
    except ValueError:
        name = getattr(kind, "__name__", str(kind))
        raise ConfigError(f"{flag}={text!r} is not valid: expected {name}") from None


def field_type(cfg_cls: type, name: str) -> type:
    hints = {f.name: f for f in dataclasses.fields(cfg_cls)}
    default = hints[name].default
    return type(default)


def build(cfg_cls: type, prefix: str, preset: dict[str, Any], overrides: dict[str, str]) -> Any:
    """cfg_cls defaults <- preset values <- CLI overrides (strings), then validated."""
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    values = dict(preset)
    for name, text in overrides.items():
        if name not in names:
            valid = ", ".join(sorted(f"--{prefix}.{n.replace('_', '-')}" for n in names))
            raise ConfigError(f"unknown option --{prefix}.{name.replace('_', '-')}; valid: {valid}")
        flag = f"--{prefix}.{name.replace('_', '-')}"
        values[name] = parse_value(text, field_type(cfg_cls, name), flag)
    cfg = cfg_cls(**values)
    validate(cfg, prefix)
    return cfg


def train_batch_fields(cfg: Any) -> dict[str, int]:
    """The fields of `cfg` declared `batch_of_train` and their values."""
    return {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if f.metadata.get("batch_of_train")
    }


def check_seq_widths(cfg: Any, prefix: str, seq_len: int) -> None:
    """ConfigError for a `within_seq_len` field of `cfg` with a width above T = `seq_len`."""
    for f in dataclasses.fields(cfg):
        if f.metadata.get("within_seq_len"):
            flag = f"--{prefix}.{f.name.replace('_', '-')}"
            check_widths(parse_ints(getattr(cfg, f.name), flag), seq_len, flag)


def flatten(cfg: Any, prefix: str) -> dict[str, str]:
    """MLflow params are flat strings: {'mle.lr': '0.01', ...}."""
    return {f"{prefix}.{k}": str(v) for k, v in dataclasses.asdict(cfg).items()}
