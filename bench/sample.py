"""`python -m bench.sample RUN_ID`: print token-id sequences drawn from a kept generator.

python -m bench.sample RUN_ID --n 10 [--temperature 1.0] [--seed 0] [--tracking-uri URI]

RUN_ID is a finished cell's run (or its `bench.rescore` copy); its `generator.pt` is loaded
(bench.store.generators) and sampled on CPU: one line of seq_len token ids per sequence.
"""

from __future__ import annotations

import sys

import torch
from mlflow import MlflowClient

from bench.cells.plan import SEED_LIMIT
from bench.cli import OneLineParser
from bench.store.generators import StoredGeneratorError, load_generator, rebuild_generator
from bench.store.tracker import TrackingError, check_uri, default_uri


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m bench.sample",
        description="Sample token-id sequences from the generator a finished cell kept.",
    )
    p.add_argument("run_id", help="MLflow run id of a finished (method, seed) cell")
    p.add_argument("--n", default=10, type=int, help="sequences to print (default 10)")
    p.add_argument("--temperature", default=1.0, type=float, help="sampling temperature")
    p.add_argument("--seed", default=0, type=int, help="seed of the sampling stream")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.n < 1 or not args.temperature > 0:
        p.error("--n must be >= 1 and --temperature > 0")
    if not 0 <= args.seed < SEED_LIMIT:
        p.error(f"--seed {args.seed}: a seed must be in [0, 2**32)")
    try:
        uri = args.tracking_uri or default_uri()
        check_uri(uri)
        gen = rebuild_generator(load_generator(MlflowClient(tracking_uri=uri), args.run_id))
    except (TrackingError, StoredGeneratorError) as e:
        print(f"bench.sample: error: {e}", file=sys.stderr)
        return 2
    rng = torch.Generator().manual_seed(args.seed)
    # streamed CHUNK rows at a time, in bounded memory: the same rows as one call (gen.sample
    # draws CHUNK-row batches from the same stream in turn); float64, so the same rows on every CPU
    for start in range(0, args.n, CHUNK):
        samples = gen.sample_portable(
            min(CHUNK, args.n - start), rng=rng, temperature=args.temperature
        )
        print("\n".join(" ".join(map(str, row)) for row in samples.tolist()), flush=True)
    return 0


CHUNK = 1000  # LSTMGenerator.sample's default batch


if __name__ == "__main__":
    sys.exit(main())
