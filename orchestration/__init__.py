"""The commands that drive several stages: train-and-gate, serve from the registry, drift, retrain.

The layer above the stage packages: it may import any of them; they import only `core`.
"""
