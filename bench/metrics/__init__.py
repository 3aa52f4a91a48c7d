"""Evaluation: NLL against the oracle and held-out data, BLEU, and a model scored on a task."""
