"""Cells of an invocation: the resolved plan, keys, lifecycle, checkpoints and executors."""
