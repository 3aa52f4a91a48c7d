"""Fraction of subnormal entries in a gumbel cell's relaxed one-hot rows, from its checkpoint.

The gumbel method feeds its critic softmax(beta (logits + g)); entries that are nonzero but below
float32's smallest normal (1.18e-38) are slow on CPU (docs/performance.md, "Gumbel on CPU").
This loads the generator of a gumbel cell's checkpoint (`<cache-dir>/checkpoints/<key>.pt`; the
default sizes: V = 5000, T = 20, 32 units), samples one batch of 64 sequences per beta with a
fixed seed and prints that fraction.

    python tools/subnormal_check.py .cache/checkpoints/<key>.pt --betas 1 2.2 3 5 8.6 30 100
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.cells.checkpoint import load_checkpoint
from methods.generator import LSTMGenerator
from methods.gumbel import gumbel_rollout


def subnormal_fraction(x: torch.Tensor) -> float:
    """Fraction of the entries of x (any shape) that are subnormal: 0 < |x| < float32's smallest
    normal number. Higher means slower CPU arithmetic on x."""
    return ((x != 0) & (x.abs() < torch.finfo(torch.float32).tiny)).float().mean().item()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a gumbel cell's checkpoint file (.pt)")
    parser.add_argument(
        "--betas", type=float, nargs="+", default=[1, 2, 3, 5, 8, 30, 100], help="betas to try"
    )
    parser.add_argument("--batch", type=positive_int, default=64, help="sequences per beta")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = parser.parse_args()
    state = load_checkpoint(args.checkpoint)
    if state is None or "generator" not in state.get("trainer", {}):
        raise SystemExit(f"{args.checkpoint}: no readable trainer checkpoint with a generator")
    generator = LSTMGenerator()
    generator.load_state_dict(state["trainer"]["generator"])
    rng = torch.Generator().manual_seed(args.seed)
    print(f"checkpoint after {state['trainer'].get('done', {}).get('value', '?')} updates")
    for beta in args.betas:
        with torch.no_grad():
            _, relaxed, logits = gumbel_rollout(generator, args.batch, beta, rng)  # (B, T, V)
        print(
            f"beta {beta:7.2f}: {subnormal_fraction(relaxed):.3f} of the relaxed entries subnormal"
            f" (logit standard deviation {logits.std().item():.2f})"
        )


if __name__ == "__main__":
    main()
