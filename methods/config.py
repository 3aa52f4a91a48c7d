"""Hyperparameter fields with help text, provenance and validity checks, and CLI overrides.

Every hyperparameter lives in its method's frozen Config dataclass, declared with `hp(...)`, so
`--help`, validation and the MLflow params all come from that one place. A list-valued field,
`hp((2, 3), ..., items=int)`, holds a tuple: `build` parses its CLI text ("2,3") once, its check
applies to every item, and `flatten` writes it as comma-joined text ("2,3"; a float item as
Python writes it: "1" is logged "1.0").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

# check name -> (test of one value, the condition it states); the message is "must be <condition>",
# or for a list field (`items`) "must be a non-empty comma list of <items> <condition>"
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "positive": (lambda v: v > 0, "> 0"),
    "nonneg": (lambda v: v >= 0, ">= 0"),
    "unit": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "ge1": (lambda v: v >= 1, ">= 1"),
}
ITEM_NAMES = {int: "integers", float: "numbers"}  # the element types a list field may have


class ConfigError(ValueError):
    """A hyperparameter value that is invalid; the message names it and what is valid."""


def flag_name(prefix: str, name: str) -> str:
    """The CLI flag of field `name` under `prefix`: ('seqgan', 'd_steps') -> '--seqgan.d-steps'."""
    return f"--{prefix}.{name.replace('_', '-')}"


def render(value: Any) -> Any:
    """A list field's value as its CLI text, (2, 3) -> '2,3'; any other value unchanged."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def check_widths(widths: tuple[int, ...], seq_len: int, flag: str) -> tuple[int, ...]:
    """Convolution widths, unchanged, or a ConfigError if one exceeds the sequence length T:
    the windows of a wider filter would not fit in any sequence. Known only once the task is
    loaded (the oracle fixes T), so the trainers call this, not `validate`."""
    if max(widths) > seq_len:
        raise ConfigError(
            f"{flag}={render(widths)!r} is not valid: widths must be <= T = {seq_len}"
        )
    return widths


def hp(
    default: Any,
    help: str,
    *,
    source: str = "",
    check: str | None = None,
    choices=None,
    items: type | None = None,
    batch_of_train: bool = False,
    within_seq_len: bool = False,
):
    """A config field: `help` is the --help text, `source` where the default comes from.

    `items` (int or float): the field is a non-empty list of such numbers, held as a tuple (the
    default too), given on the command line as a comma list; `check` then applies to each item.
    `batch_of_train`: the field is a minibatch size drawn from the training set, so the CLI
    refuses a value above --bench.n-train (an epoch of zero updates). `within_seq_len`: an int
    list of convolution widths, each of which must be <= the task's sequence length T."""
    if items is not None:
        if items not in ITEM_NAMES:
            raise TypeError(f"items must be one of {list(ITEM_NAMES)}, not {items!r}")
        if not (isinstance(default, tuple) and all(type(v) is items for v in default)):
            raise TypeError(f"the default of a list field must be a tuple of {items.__name__}")
    if within_seq_len and items is not int:
        raise TypeError("within_seq_len needs a list of widths: items=int")
    shown = render(default)
    meta = {"help": f"{help} (default {shown!r}; {source})" if source else help}
    meta.update(
        check=check,
        choices=choices,
        items=items,
        batch_of_train=batch_of_train,
        within_seq_len=within_seq_len,
    )
    return dataclasses.field(default=default, metadata=meta)


def validate(cfg: Any, prefix: str) -> None:
    """Raise ConfigError for the first field of `cfg` that fails its check."""
    _validate(type(cfg), {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}, prefix)


def _validate(cfg_cls: type, values: dict[str, Any], prefix: str, texts=None) -> None:
    """`validate` on field values before the dataclass is built (so before its __post_init__'s
    checks across fields); an error quotes a field's CLI text from `texts` where it has one."""
    for f in dataclasses.fields(cfg_cls):
        value = values[f.name]
        flag = flag_name(prefix, f.name)
        shown = (texts or {}).get(f.name, render(value))
        check = f.metadata.get("check")
        items = f.metadata.get("items")
        if items is not None:
            if not isinstance(value, tuple) or not all(type(v) is items for v in value):
                raise ConfigError(
                    f"{flag}={value!r} is not valid: must be a tuple of {items.__name__}"
                )
            if items is float and not all(math.isfinite(v) for v in value):
                raise ConfigError(
                    f"{flag}={shown!r} is not valid: every item must be a finite number"
                )
            if not value or (check is not None and not all(CHECKS[check][0](v) for v in value)):
                raise ConfigError(f"{flag}={shown!r} is not valid: {_list_rule(f)}")
            continue
        if isinstance(value, float) and not math.isfinite(value):  # no rate or weight is inf
            raise ConfigError(f"{flag}={value!r} is not valid: must be a finite number")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{flag}={value!r} is not valid; choose from {', '.join(choices)}")
        if check is not None and not CHECKS[check][0](value):
            raise ConfigError(f"{flag}={value!r} is not valid: must be {CHECKS[check][1]}")


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


def _parse_items(text: str, items: type) -> tuple:
    """'2, 3,5' -> (2, 3, 5) for items=int: items separated by commas and/or whitespace;
    ValueError if one is not an `items`."""
    return tuple(items(v) for v in text.replace(",", " ").split())


def _parse_field(f: dataclasses.Field, text: str, flag: str) -> Any:
    items = f.metadata.get("items")
    if items is None:
        return parse_value(text, type(f.default), flag)
    try:
        return _parse_items(text, items)
    except ValueError:
        raise ConfigError(f"{flag}={text!r} is not valid: {_list_rule(f)}") from None


def _list_rule(f: dataclasses.Field) -> str:
    """What a list field's value must be: 'must be a non-empty comma list of integers > 0'."""
    check = f.metadata.get("check")
    condition = f" {CHECKS[check][1]}" if check is not None else ""
    return f"must be a non-empty comma list of {ITEM_NAMES[f.metadata['items']]}{condition}"


def build(cfg_cls: type, prefix: str, preset: dict[str, Any], overrides: dict[str, str]) -> Any:
    """cfg_cls defaults <- preset values <- CLI overrides (strings), then validated."""
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    values = {name: f.default for name, f in fields.items()} | preset
    for name, text in overrides.items():
        if name not in fields:
            valid = ", ".join(sorted(flag_name(prefix, n) for n in fields))
            raise ConfigError(f"unknown option {flag_name(prefix, name)}; valid: {valid}")
        values[name] = _parse_field(fields[name], text, flag_name(prefix, name))
    _validate(cfg_cls, values, prefix, overrides)  # each field, then __post_init__'s checks
    return cfg_cls(**values)


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
            check_widths(getattr(cfg, f.name), seq_len, flag_name(prefix, f.name))


def flatten(cfg: Any, prefix: str) -> dict[str, str]:
    """MLflow params are flat strings: {'mle.lr': '0.01', 'seqgan.d_steps': '5', ...}; a list
    field as its CLI text, '2,3'."""
    return {f"{prefix}.{k}": str(render(v)) for k, v in dataclasses.asdict(cfg).items()}
