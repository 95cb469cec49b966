"""Training style networks (perceptual loss), Gatys optimization and style evaluation.

Heavy modules are imported by the submodules themselves; importing this package is cheap.
"""
