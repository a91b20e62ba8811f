"""Inference backends: classify an upload in a worker that holds the model (a local process pool today)."""
