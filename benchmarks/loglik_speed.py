"""Speed of the importance-sampled log-likelihood: examples x samples per second.

    .venv/bin/python benchmarks/loglik_speed.py [--examples 1000] [--samples 1000] [--data-dir ../shared/data/mnist]

The VAE is 784-512-256-16 (Bernoulli), trained 5 epochs on mnist-5k so the posterior is
realistic. For reference, the same estimate computed one example at a time (the loop
pythae's get_nll uses) is timed on the first 100 examples with K=100.
"""

import argparse
import math

import numpy as np
import torch
from common import SHARED_MNIST, Timer, machine

import aekit as ae
from aekit.evaluation import metrics


def per_example_loop(model, x, samples):
    """One example at a time, one log-sum-exp per example (the reference implementation's shape)."""
    out = []
    with torch.no_grad():
        for xi in torch.as_tensor(x):
            out.append(metrics.log_likelihood(model, xi[None], samples=samples, batch_size=1)[0])
    return np.array(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--data-dir", default=str(SHARED_MNIST))
    args = parser.parse_args()
    train = ae.data.load("mnist-5k")
    test = ae.data.load("mnist", split="test", data_dir=args.data_dir, download=False)
    x = test.x[: args.examples]
    model = ae.build("vae", input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256))
    ae.fit(model, train, epochs=5, verbose=0)
    print(f"machine: {machine()}")
    with Timer() as t:
        ll = metrics.log_likelihood(model, x, samples=args.samples)
    rate = args.examples * args.samples / t.seconds
    print(f"batched log_likelihood: {args.examples} examples x K={args.samples}: {t.seconds:.2f} s, "
          f"{rate:,.0f} examples x samples / s, mean {ll.mean():.2f} nats")
    with Timer() as t2:
        per_example_loop(model, x[:100], 100)
    loop_rate = 100 * 100 / t2.seconds
    print(f"per-example loop: 100 examples x K=100: {t2.seconds:.2f} s, {loop_rate:,.0f} examples x samples / s "
          f"(batched is {rate / loop_rate:.1f}x faster)")
    print(f"machine after: {machine()}")
    assert math.isfinite(ll.mean())


if __name__ == "__main__":
    main()
