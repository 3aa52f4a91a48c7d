"""Training: the one run loop every method steps through, the shared pre-training, one cell."""
