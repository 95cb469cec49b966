"""Inference runtime: device transfers, the stylizer, smoothing and the pipeline."""
