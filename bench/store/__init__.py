"""The MLflow store: the Tracker, code and environment provenance, kept generators."""
