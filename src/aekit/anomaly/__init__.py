"""Anomaly detection: the score formulas and thresholds (scores.py), the default detector with its
explanations (detector.py), and detection on a run's data as tables in the data's own terms (detect.py)."""

from aekit.anomaly import detect, detector, scores

__all__ = ["detect", "detector", "scores"]
