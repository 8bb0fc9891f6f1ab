import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 1,797 real 8x8 digits scaled to [0, 1], as (N, 64) float32, and labels."""
    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target


@pytest.fixture(scope="session")
def digit_images(digits):
    x, y = digits
    return x.reshape(-1, 1, 8, 8), y
