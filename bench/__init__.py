"""seqgan-bench: the CLI, metrics, tracking and reports around the methods in `methods/`."""
