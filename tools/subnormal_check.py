"""Fraction of subnormal entries in a gumbel cell's relaxed one-hot rows, from its checkpoint.

The gumbel method used to feed its critic plain softmax(beta (logits + g)); entries that are
nonzero but below float32's smallest normal (1.18e-38) are slow on CPU (docs/performance.md,
"Gumbel on CPU"). It now feeds `relaxed_one_hot`'s floored rows, which hold none; this prints
the fraction the plain rows would hold, and the floored rows' (0).
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
from methods.critic import gumbel_noise
from methods.generator import LSTMGenerator
from methods.gumbel import relaxed_one_hot


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
            perturbed, logits = _perturbed_logits(generator, args.batch, rng)  # (B, T, V) each
        plain = subnormal_fraction(torch.softmax(beta * perturbed, dim=-1))
        floored = subnormal_fraction(relaxed_one_hot(perturbed, beta))
        print(
            f"beta {beta:7.2f}: {plain:.3f} of the plain relaxed entries subnormal, {floored:.3f}"
            f" of the floored (logit standard deviation {logits.std().item():.2f})"
        )


def _perturbed_logits(generator: LSTMGenerator, n: int, rng: torch.Generator):
    """The gumbel method's sampling (methods/gumbel.py, gumbel_rollout): logits + Gumbel noise
    and the logits, (n, T, V) each, hard Gumbel-max tokens fed back."""
    tokens, state = generator.start_tokens(n), generator.initial_state(n)
    perturbed, plain = [], []
    for _ in range(generator.seq_len):
        logits, state = generator.step(tokens, state)  # (n, V)
        noisy = logits + gumbel_noise(logits.shape, rng, logits.device)  # (n, V)
        tokens = noisy.argmax(dim=-1)  # (n,)
        perturbed.append(noisy)
        plain.append(logits)
    return torch.stack(perturbed, dim=1), torch.stack(plain, dim=1)


if __name__ == "__main__":
    main()
