"""Measuring a trained model: one function per metric (metrics.py), `ae.evaluate` that applies every
metric that fits (evaluate.py), generation and latent densities (generation.py), and judging
generated samples with a small classifier and a Frechet distance (quality.py)."""

from aekit.evaluation import generation, metrics, quality

__all__ = ["generation", "metrics", "quality"]
