"""Quality metrics for stylized video (temporal stability, fidelity)."""
