"""The task: a known LSTM oracle, its training data and its held-out data."""
