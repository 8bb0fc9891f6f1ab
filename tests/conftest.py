import os

# Under pytest-xdist (the README's test command runs two workers on a 2-core machine) each worker and every
# subprocess it starts computes on one thread: two processes each running two torch threads slow each other
# down many times over. Set before torch is imported so that its thread pools start that way.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_name] = "1"

import numpy as np
import pytest
import torch
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


@pytest.fixture(scope="module")
def one_thread():
    """One thread for torch and for NumPy's BLAS (scikit-learn) in a module of small models: on a busy
    2-core machine a second thread only waits (a scikit-learn fit took 12 s instead of 0.1 s)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
