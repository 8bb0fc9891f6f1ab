"""Training speed on this machine: our loop against pythae, precision, the contractive penalty, memmap data.

    .venv/bin/python benchmarks/speed.py            # everything (about 10 minutes on 2 CPU cores)
    .venv/bin/python benchmarks/speed.py --quick    # fewer epochs and repeats, a 1 GB memmap

Sections (--only picks some): peaks, vae, conv, contractive, memmap.
- peaks: fp32 and bf16 matrix-multiply peaks (1024 x 1024), the yardstick for "fraction of peak".
- vae: the MLP VAE 784-512-256-16 (ReLU, Bernoulli) on the 5,000 mnist-5k digits, trained for
  --epochs epochs by pythae 0.1.2 (when installed), by us in fp32 and bf16 at pythae's settings
  (Adam 1e-3, batch 128), and by us with the fast recipe (--recipe-*). Runs alternate, --repeats
  times; samples/s are medians; the test -ELBO (nats, official MNIST test split, one posterior
  sample per digit) after the last epoch; time-to-quality = our training time until the recipe's
  test -ELBO first reaches pythae's median final one, against pythae's median wall time.
- conv: a convolutional VAE on the same digits, fp32 and bf16.
- contractive: seconds per epoch of a contractive AE against a plain AE of the same shape.
- memmap: training from a memory-mapped .npy of --memmap-gb GB (a child process, its peak RSS)
  against the same model trained from an in-memory array.
Every figure is printed with the machine's load average; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import aekit as ae
from aekit.data.base import release_pages
from aekit.models.distributions import DiagonalGaussian
from aekit.training import precision as ae_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_MNIST, machine

VAE_SHAPE = dict(hidden=(512, 256), latent_dim=16, activation="relu")


def load_average() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


# ----- matrix-multiply peaks -----


def matmul_peak(device: torch.device, bf16: bool, n: int = 1024, repeats: int = 30) -> float:
    """GFLOP/s of an n x n matmul (median of `repeats`), in fp32 or under bf16 autocast."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    times = []
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for i in range(repeats + 3):
            _sync(device)
            start = time.perf_counter()
            a @ b
            _sync(device)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----- the test -ELBO, one formula for both libraries -----


@torch.no_grad()
def test_neg_elbo(encode, decode_probs, x: torch.Tensor, seed: int = 0) -> float:
    """-ELBO in nats per digit: E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)), one sample of z per digit."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for batch in x.split(1000):
        mu, logvar = encode(batch)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        probs = decode_probs(z).reshape(len(batch), -1).float()
        target = batch.reshape(len(batch), -1).to(probs.device)
        nll = F.binary_cross_entropy(probs, target, reduction="none").sum(1)
        total += float((nll + DiagonalGaussian(mu.float(), logvar.float()).kl()).sum())
    return total / len(x)


def ours_neg_elbo(model, x) -> float:
    model.eval()
    return test_neg_elbo(lambda b: model.posterior(b.to(model.device)), model.decode, x)


# ----- one training run of each contender -----


def train_ours(x, test_x, epochs, batch_size, lr, precision, lr_schedule, device, curve=False, **model_options):
    """(wall seconds, median epoch seconds, final test -ELBO, [(train seconds, test -ELBO)] per epoch if curve)."""
    model = ae.build("vae", input_shape=x.shape[1:], seed=0, **{**VAE_SHAPE, **model_options})
    points, spent = [], [0.0]
    start = time.perf_counter()

    def callback(row, m):
        if curve:
            t0 = time.perf_counter()
            points.append((t0 - start - spent[0], ours_neg_elbo(m, test_x)))
            m.train()
            spent[0] += time.perf_counter() - t0

    history = ae.fit(model, x, epochs=epochs, batch_size=batch_size, lr=lr, precision=precision,
                     lr_schedule=lr_schedule, val_fraction=0, verbose=0, device=device, callback=callback)
    wall = time.perf_counter() - start - spent[0]
    epoch_seconds = statistics.median(row["seconds"] for row in history)
    final = points[-1][1] if curve else ours_neg_elbo(model, test_x)
    return wall, epoch_seconds, final, points


def train_pythae(x, test_x, epochs, device):
    """(wall seconds, wall / epochs, final test -ELBO): pythae's TrainingPipeline, as its README shows."""
    import logging

    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.ERROR)
    torch.manual_seed(0)
    d = int(np.prod(x.shape[1:]))

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 512), torch.nn.ReLU(),
                                            torch.nn.Linear(512, 256), torch.nn.ReLU())
            self.mu, self.logvar = torch.nn.Linear(256, 16), torch.nn.Linear(256, 16)

        def forward(self, inputs):
            h = self.body(inputs)
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(16, 256), torch.nn.ReLU(), torch.nn.Linear(256, 512),
                                            torch.nn.ReLU(), torch.nn.Linear(512, d), torch.nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.body(z).reshape(-1, *x.shape[1:]))

    model = VAE(VAEConfig(input_dim=tuple(x.shape[1:]), latent_dim=16, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as folder:
        config = BaseTrainerConfig(output_dir=folder, num_epochs=epochs, learning_rate=1e-3,
                                   per_device_train_batch_size=128, steps_saving=None,
                                   no_cuda=device.type != "cuda", optimizer_cls="Adam")
        start = time.perf_counter()
        TrainingPipeline(model=model, training_config=config)(train_data=x.numpy())
        wall = time.perf_counter() - start
    model.eval()
    model.cpu()

    def encode(b):
        out = model.encoder(b)
        return out.embedding, out.log_covariance

    return wall, wall / epochs, test_neg_elbo(encode, lambda z: model.decoder(z).reconstruction, test_x)


# ----- sections -----


def section_vae(args, x, test_x, device, peaks):
    flops = 3 * ae_precision.forward_flops(ae.build("vae", input_shape=x.shape[1:], **VAE_SHAPE))
    print(f"\n== MLP VAE 784-512-256-16 on mnist-5k ({len(x)} digits), {args.epochs} epochs, "
          f"{args.repeats} alternating repeats; {flops / 1e6:.2f} MFLOP per training sample ==")
    contenders = {}
    if importlib.util.find_spec("pythae") is not None and not args.no_pythae:
        contenders["pythae 0.1.2 (fp32, batch 128, lr 1e-3)"] = lambda: (*train_pythae(x, test_x, args.epochs, device), [])
    else:
        print("pythae is not installed: `.venv/bin/pip install -c constraints.txt pythae==0.1.2` adds it to the table")
    same = dict(batch_size=128, lr=1e-3, lr_schedule="constant", device=device)
    defaults = "ours auto = defaults (batch 128, lr 1e-3)"
    contenders["ours fp32 (batch 128, lr 1e-3)"] = lambda: train_ours(x, test_x, args.epochs, precision="fp32", **same)
    contenders[defaults] = lambda: train_ours(x, test_x, args.epochs, precision="auto", curve=True, **same)
    recipe = dict(batch_size=args.recipe_batch, lr=args.recipe_lr, lr_schedule=args.recipe_schedule, device=device)
    label = f"batch {args.recipe_batch}, lr {args.recipe_lr:g} {args.recipe_schedule}"
    contenders[f"ours fp32 ({label})"] = lambda: train_ours(x, test_x, args.epochs, precision="fp32", **recipe)
    contenders[f"ours auto ({label})"] = lambda: train_ours(x, test_x, args.epochs, precision="auto", curve=True,
                                                             **recipe)
    results = {name: [] for name in contenders}
    for repeat in range(args.repeats):
        for name, run in contenders.items():
            results[name].append(run())
        print(f"  repeat {repeat + 1}/{args.repeats} done, load average {load_average()}")
    rows = []
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        per_sample = len(x) / statistics.median(r[1] for r in runs)
        elbo = statistics.median(r[2] for r in runs)
        rows.append((name, per_sample, wall, elbo))
    print(f"{'':<44} {'samples/s':>10} {'% fp32 pk':>9} {'% bf16 pk':>9} {'wall s':>7} {'test -ELBO':>10}")
    for name, per_sample, wall, elbo in rows:
        achieved = per_sample * flops / 1e9
        print(f"{name:<44} {per_sample:>10.0f} {100 * achieved / peaks[0]:>8.0f}% {100 * achieved / peaks[1]:>8.0f}% "
              f"{wall:>7.2f} {elbo:>10.2f}")
    by_name = {r[0]: r for r in rows}
    if any(n.startswith("pythae") for n in by_name):
        pythae = next(r for n, r in by_name.items() if n.startswith("pythae"))
        for name, per_sample, _, elbo in rows[1:]:
            print(f"  {name}: throughput {per_sample / pythae[1]:.2f}x pythae's, test -ELBO {elbo - pythae[3]:+.2f} nats")
        target = pythae[3]
        print(f"time-to-quality: pythae reaches test -ELBO {target:.2f} after {args.epochs} epochs in {pythae[2]:.2f} s")
        for name in (defaults, f"ours auto ({label})"):
            times = []
            for run in results[name]:
                reached = [t for t, value in run[3] if value <= target]
                times.append(round(reached[0], 2) if reached else float("nan"))
            reach = statistics.median(times)
            if reach == reach:
                print(f"  {name} reaches it in {reach:.2f} s (median of {times}) = {reach / pythae[2]:.2f} of pythae's time")
            else:
                print(f"  {name} does not reach it within {args.epochs} epochs ({times})")
    fp32 = by_name[f"ours fp32 ({label})"][3]
    auto = by_name[f"ours auto ({label})"][3]
    print(f"bf16 vs fp32 quality ({label}, {args.epochs} epochs): test -ELBO {auto:.2f} vs {fp32:.2f} "
          f"({auto - fp32:+.2f} nats)")


def section_conv(args, x, test_x, device, peaks):
    options = dict(architecture="conv", channels=(32, 64), hidden=(256,), latent_dim=16)
    flops = 3 * ae_precision.forward_flops(ae.build("vae", input_shape=x.shape[1:], **options))
    epochs = max(1, args.epochs // 4)
    print(f"\n== convolutional VAE (3x3 stride-2 convs 32, 64; dense 256; latent 16), batch 128, lr 1e-3, "
          f"{epochs} epochs, {args.repeats} alternating repeats; {flops / 1e6:.1f} MFLOP per training sample ==")
    results = {"fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for precision in results:
            results[precision].append(train_ours(x, test_x, epochs, 128, 1e-3, precision, "constant", device,
                                                 **{**VAE_SHAPE, **options}))
    print(f"{'':<44} {'samples/s':>10} {'% fp32 pk':>9} {'% bf16 pk':>9} {'wall s':>7} {'test -ELBO':>10}")
    for precision, runs in results.items():
        per_sample = len(x) / statistics.median(r[1] for r in runs)
        achieved = per_sample * flops / 1e9
        print(f"{'ours conv ' + precision:<44} {per_sample:>10.0f} {100 * achieved / peaks[0]:>8.0f}% "
              f"{100 * achieved / peaks[1]:>8.0f}% {statistics.median(r[0] for r in runs):>7.2f} "
              f"{statistics.median(r[2] for r in runs):>10.2f}")
    print(f"  load average {load_average()}")


def section_contractive(args, x, device):
    epochs = 3 if args.quick else 5
    shape = dict(hidden=(512, 256), latent_dim=16, code_activation="sigmoid")
    print(f"\n== contractive penalty: MLP 784-512-256-16, batch 128, {epochs} epochs each, alternating ==")
    variants = {
        "plain autoencoder": ("ae", {}),
        "contractive, 1 random projection (default)": ("contractive", dict(contractive_weight=0.1)),
        "contractive, exact (16 VJPs)": ("contractive", dict(contractive_weight=0.1, contractive_projections=0)),
    }
    seconds = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (kind, options) in variants.items():
            model = ae.build(kind, input_shape=x.shape[1:], **shape, **options)
            history = ae.fit(model, x, epochs=epochs, val_fraction=0, verbose=0, device=device, precision="fp32")
            seconds[name] += [row["seconds"] for row in history[1:]]
    plain = statistics.median(seconds["plain autoencoder"])
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:<44} {median:.3f} s/epoch  {median / plain:.2f}x the plain step")
    print(f"  load average {load_average()}")


MEMMAP_CHILD = r"""
import json, sys, time, numpy as np, torch
import aekit as ae
path, mode, rows, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from aekit.data.base import release_pages
if mode == "memmap":
    data = ae.data.load(path)  # above memmap_threshold: stays on disk
else:  # the first rows of the same file, copied into memory (in chunks, so the copy is the only big thing)
    mapped, data = np.load(path, mmap_mode="r"), np.empty((rows, 784), dtype=np.float32)
    for i in range(0, rows, 50_000):
        data[i:i + 50_000] = mapped[i:i + 50_000]
        release_pages(mapped)
model = ae.build("vae", input_shape=(784,), hidden=(512, 256), latent_dim=16)
start = time.perf_counter()
history = ae.fit(model, data, epochs=1, val_fraction=0.01, verbose=0, device=device)
seconds = time.perf_counter() - start
# VmHWM: this process's peak resident memory (ru_maxrss would include the parent's, kept across exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": len(data), "seconds": seconds, "epoch_seconds": history[-1]["seconds"],
                  "peak_rss_mb": peak / 1024}))
"""


def section_memmap(args, x, device):
    rows = int(args.memmap_gb * 2**30 / (784 * 4))
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        path = Path(folder) / "digits.npy"
        start = time.perf_counter()
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 784))
        flat = x.reshape(len(x), -1).numpy()
        rng = np.random.default_rng(0)
        for i in range(0, rows, len(flat)):  # the digits again and again, each copy lightly jittered
            n = min(len(flat), rows - i)
            out[i:i + n] = np.clip(flat[:n] + rng.normal(0, 0.02, (n, 784)).astype(np.float32), 0, 1)
            release_pages(out)  # keep this process small: the pages stay in the page cache
        out.flush()
        del out
        print(f"\n== data larger than memory: {path.stat().st_size / 2**30:.2f} GB float32 .npy "
              f"({rows} rows of 784), written in {time.perf_counter() - start:.0f} s; MLP VAE, 1 epoch ==")
        in_memory_rows = min(rows, 200_000)
        for mode, n in (("in-memory", in_memory_rows), ("memmap", rows)):
            done = subprocess.run([sys.executable, "-c", MEMMAP_CHILD, str(path), mode, str(n), str(device)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{mode}: failed\n{done.stderr[-2000:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{mode:<10} {r['rows']:>8} rows  {r['rows'] * 0.99 / r['epoch_seconds']:>8.0f} samples/s  "
                  f"peak RSS {r['peak_rss_mb']:>6.0f} MB  (whole fit {r['seconds']:.0f} s)")
    print(f"  load average {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="peaks,vae,conv,contractive,memmap")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 epochs, 1 repeat, 1 GB memmap")
    parser.add_argument("--no-pythae", action="store_true")
    parser.add_argument("--recipe-batch", type=int, default=512)
    parser.add_argument("--recipe-lr", type=float, default=3e-3)
    parser.add_argument("--recipe-schedule", default="cosine")
    parser.add_argument("--memmap-gb", type=float, default=3.0)
    parser.add_argument("--tmp", default=None, help="folder for the memmap file (default: the system's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=str(SHARED_MNIST), help="folder of the official MNIST test files")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.memmap_gb = 5, 1, 1.0
    device = torch.device(args.device)
    sections = set(args.only.split(","))
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    x = ae.data.load("mnist-5k").x
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    test_x = torch.as_tensor(np.asarray(ae.data.load("mnist", split="test", data_dir=args.data_dir,
                                                         download=False).x, dtype=np.float32))
    peaks = (matmul_peak(device, False), matmul_peak(device, True))
    print(f"matmul peak (1024 x 1024, median of 30): fp32 {peaks[0]:.0f} GFLOP/s, bf16 {peaks[1]:.0f} GFLOP/s; "
          f"load average {load_average()}")
    if "vae" in sections:
        section_vae(args, x, test_x, device, peaks)
    if "conv" in sections:
        section_conv(args, x, test_x, device, peaks)
    if "contractive" in sections:
        section_contractive(args, x, device)
    if "memmap" in sections:
        section_memmap(args, x, device)
    print(f"\nend: load average {load_average()}, peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
