"""How close CoT's mediator gets to ½(P + G) by its warm-up alone (G fixed): docs/methods.md, "CoT".

    python tools/cot_mediator_fit.py --pretrained CACHE/pretrain-KEY.pt --updates 1800 --every 300

Builds the task like bench.run (`--oracle`, `--oracle-path`, the data cache in `--cache-dir`),
loads a cached pre-trained generator (a `pretrain-*.pt` of that cache) and a CoT trainer of the
`quick` preset without warm-up, then makes mediator updates only. Every `--every` updates it
prints the mediator's per-token cross-entropy on 2,000 held-out oracle sequences and 2,000
generator samples, beside that mixture's own entropy (a Monte-Carlo estimate from the exact
densities of the same 4,000 sequences): the gap is how far M is from ½(P + G).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from methods.base import TrainContext
from methods.config import build
from methods.cot import PRESETS, Config, CoTTrainer
from methods.generator import LSTMGenerator
from oracle.cache_file import CacheFileError, load_verified
from oracle.data import DEFAULT_PAPER_ORACLE, OracleSpec, load_task


def main(argv: list[str] | None = None) -> None:
    """Print the mediator's cross-entropy against the mixture's entropy as it trains."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", required=True, help="a cached pretrain-*.pt file")
    p.add_argument("--oracle", default="seqgan-paper", choices=("random", "seqgan-paper"))
    p.add_argument("--oracle-path", default=str(DEFAULT_PAPER_ORACLE))
    p.add_argument("--cache-dir", default=".cache", help="the task data's cache")
    p.add_argument("--updates", type=int, default=1800, help="mediator updates in all")
    p.add_argument("--every", type=int, default=300, help="updates between two measurements")
    args = p.parse_args(argv)
    spec = OracleSpec(kind=args.oracle, path=args.oracle_path)
    task = load_task(spec, 10_000, 10_000, Path(args.cache_dir))
    gen = LSTMGenerator(task.vocab_size, 32, 32, task.seq_len)
    try:
        saved = load_verified(Path(args.pretrained))
    except CacheFileError:  # a cache file from before digests
        saved = torch.load(args.pretrained, weights_only=True)
    gen.load_state_dict(saved["state"])
    cfg = build(Config, "cot", PRESETS["quick"] | {"mediator_warmup": 0}, {})
    rng = torch.Generator().manual_seed(0)
    trainer = CoTTrainer(cfg, TrainContext(task, torch.device("cpu"), rng, 0), gen)
    mix = torch.cat([task.test[:2000], gen.sample(2000, rng=torch.Generator().manual_seed(123))])
    with torch.no_grad():  # log ½(P + G) of each of the 4,000 sequences, (4000,)
        log_mix = torch.logaddexp(task.oracle.log_prob(mix), gen.log_prob(mix)) - math.log(2)
    entropy = -log_mix.mean().item() / task.seq_len
    print(f"mixture entropy per token {entropy:.3f}")
    for k in range(1, args.updates + 1):
        trainer.update_mediator()
        if k % args.every == 0:
            cross = -trainer.mediator.log_prob(mix).mean().item() / task.seq_len
            print(f"{k} updates: mediator cross-entropy {cross:.3f}, gap {cross - entropy:.3f}")


if __name__ == "__main__":
    main()
