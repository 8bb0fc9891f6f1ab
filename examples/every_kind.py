"""Train every registered kind on scikit-learn's embedded 8x8 digits and print a table.

    .venv/bin/python examples/every_kind.py [--epochs 30] [--out runs/every_kind]

No network: the digits ship with scikit-learn. Each run folder under --out can
be loaded back with aekit.load(path).
"""

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import aekit as ae


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--out", default="runs/every_kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(max(1, torch.get_num_threads()))
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixels to [0, 1]
    x_train, x_val = train_test_split(x, test_size=0.2, random_state=args.seed)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)

    configs = [(k.name, "mlp") for k in ae.kinds()] + [("ae", "conv"), ("vae", "conv")]
    rows = []
    for kind, arch in configs:
        options = {"latent_dim": args.latent_dim}
        shape = (64,)
        if arch == "conv":
            options.update(architecture="conv", channels=(32, 64), hidden=(128,))
            shape = (1, 8, 8)
        model = ae.build(kind, input_shape=shape, seed=args.seed, **options)
        start = time.perf_counter()
        history = ae.fit(model, x_train.reshape(-1, *shape), x_val=x_val.reshape(-1, *shape), epochs=args.epochs,
                         lr=1e-3, seed=args.seed, out=out / f"{kind}-{arch}", verbose=1)
        seconds = time.perf_counter() - start
        train_rows = [r for r in history if r["stage"] in ("train", "finetune")]
        final = ae.evaluate_loss(model, torch.from_numpy(x_val.reshape(-1, *shape)))
        rows.append((f"{kind} ({arch})", final, seconds / len(history), sum(r["seconds"] for r in train_rows) / len(train_rows)))

    terms = ["total", "reconstruction", "sparsity", "contractive", "kl", "mse_per_feature"]
    header = f"{'kind':<20}" + "".join(f"{t:>16}" for t in terms) + f"{'s/epoch':>10}"
    print(f"\nValidation loss terms on the digits ({len(x_val)} held-out examples, {args.epochs} epochs, "
          "per example; reconstruction in nats except pca: squared error)")
    print(header)
    print("-" * len(header))
    for name, final, per_epoch, _ in rows:
        cells = "".join(f"{final[t]:>16.4f}" if t in final else f"{'':>16}" for t in terms)
        print(f"{name:<20}{cells}{per_epoch:>10.3f}")
    print(f"\nRun folders: {out}/<kind>-<architecture> (load with aekit.load)")


if __name__ == "__main__":
    main()
