"""How many torch threads a training step should use, by model size: samples/s with 1 and N threads.

    .venv/bin/python benchmarks/threads.py [--threads 2] [--seconds 3]

On a CPU, a small model's step is mostly per-operation overhead; splitting its tiny matrix
products across threads adds synchronisation, and on a busy machine a second thread waits for a
core. This measures where a second thread starts to pay, for the threshold `n_threads="auto"`
uses (inference.py, SMALL_WORK_FLOPS). Prints the load average: run it on an idle machine
and on a busy one.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import aekit as ae
from aekit.training.precision import forward_flops

MODELS = {  # name: (input_shape, options)
    "tiny 64-16-4": ((64,), dict(hidden=(16,), latent_dim=4)),
    "table 21-64-8": ((21,), dict(hidden=(64,), latent_dim=8)),
    "small 64-256-64-16": ((64,), dict(hidden=(256, 64), latent_dim=16)),
    "mnist 784-256-64-16": ((784,), dict(hidden=(256, 64), latent_dim=16)),
    "mnist 784-512-256-16": ((784,), dict(hidden=(512, 256), latent_dim=16)),
    "conv 1x28x28 32-64": ((1, 28, 28), dict(architecture="conv", hidden=(128,), latent_dim=16)),
}


def samples_per_second(shape, options, threads: int, seconds: float, batch_size: int = 128) -> float:
    torch.set_num_threads(threads)
    model = ae.build("ae", input_shape=shape, reconstruction="mse", **options)
    x = torch.rand(4096, *shape)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for idx in torch.randperm(len(x)).split(batch_size):
            loss = model.loss(x[idx]).total
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += len(idx)
        if done > 200_000:
            break
    return done / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}; torch {torch.__version__}")
    print(f"{'model':<24} {'MFLOP/step':>10} {'1 thread':>10} {f'{args.threads} threads':>10} {'ratio':>6}")
    for name, (shape, options) in MODELS.items():
        flops = 3 * forward_flops(ae.build("ae", input_shape=shape, **options)) * 128  # forward + backward
        rates = [np.median([samples_per_second(shape, options, t, args.seconds) for _ in range(3)])
                 for t in (1, args.threads)]
        print(f"{name:<24} {flops / 1e6:>10.1f} {rates[0]:>10.0f} {rates[1]:>10.0f} {rates[1] / rates[0]:>6.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
