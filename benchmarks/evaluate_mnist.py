"""The lectures' claims in numbers: a VAE and a plain autoencoder trained on mnist-5k,
evaluated on the official MNIST test split (10,000 digits).

    .venv/bin/python benchmarks/evaluate_mnist.py [--epochs 50] [--samples 5000] [--ll-examples 1000]

Prints ELBO and importance-sampled log-likelihood (VAE), generation validity and Frechet
distance judged by a classifier trained on mnist-5k's labels, linear-probe accuracy of the
codes next to raw pixels and PCA-16, and reconstruction error.
"""

import argparse
import json

import numpy as np
from common import SHARED_MNIST, Timer, machine

import aekit as ae
from aekit.evaluation import quality


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--samples", type=int, default=5000, help="K for the log-likelihood")
    parser.add_argument("--ll-examples", type=int, default=1000, help="test digits for the log-likelihood")
    parser.add_argument("--data-dir", default=str(SHARED_MNIST))
    parser.add_argument("--json", help="also write the full results here")
    args = parser.parse_args()
    train = ae.data.load("mnist-5k")
    test = ae.data.load("mnist", split="test", data_dir=args.data_dir, download=False)
    with Timer() as t:
        judge = quality.judge_for(train)
    print(f"judge: accuracy on the test split {judge.accuracy(test.x, test.y):.4f} (trained or loaded in {t.seconds:.1f} s)")
    results = {}
    for kind in ("vae", "ae"):
        model = ae.build(kind, input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256))
        with Timer() as t:
            ae.fit(model, train, epochs=args.epochs, verbose=0)
        with Timer() as te:
            r = ae.evaluate(model, test, train=train, log_likelihood_samples=args.samples,
                            log_likelihood_examples=args.ll_examples, generation=True, judge=judge, generated=10000)
        r["fit_seconds"], r["evaluate_seconds"] = t.seconds, te.seconds
        results[kind] = r
    halves = np.random.default_rng(0).permutation(len(test))  # the official split's halves differ by writer
    real = quality.generation_quality(judge, test.x[halves[:5000]], test.x[halves[5000:]])
    print(f"\nmachine: {machine()}")
    print(f"MLP 784-512-256-16, {args.epochs} epochs on mnist-5k; test split: 10,000 official digits; "
          f"log-likelihood on the first {args.ll_examples} with K={args.samples}\n")
    rows = [
        ("test ELBO (nats)", lambda r: f"{r['vae']['elbo_nats']:.2f}" if "vae" in r else "-"),
        (f"log-likelihood K={args.samples} (nats)", lambda r: (f"{r['vae']['log_likelihood_nats']:.2f} "
                                                            f"± {r['vae']['log_likelihood_standard_error_nats']:.2f}")
         if "vae" in r else "-"),
        ("reconstruction BCE (nats)", lambda r: f"{r['reconstruction']['bce_nats_per_example']:.2f}"),
        ("MSE per pixel", lambda r: f"{r['reconstruction']['mse_per_feature']:.4f}"),
        ("generated valid (conf >= 0.9)", lambda r: f"{r['generation']['valid_fraction']:.3f}"),
        ("Frechet distance (judge features)", lambda r: f"{r['generation']['frechet_distance']:.2f}"),
        ("class coverage", lambda r: f"{r['generation']['class_coverage']:.2f}"),
        ("linear probe, codes", lambda r: f"{r['latent']['codes']['linear_probe_accuracy']:.4f}"),
        ("linear probe, raw pixels", lambda r: f"{r['latent']['raw']['linear_probe_accuracy']:.4f}"),
        ("linear probe, PCA-16", lambda r: f"{r['latent']['pca_16']['linear_probe_accuracy']:.4f}"),
        ("k-NN, codes", lambda r: f"{r['latent']['codes']['knn_accuracy']:.4f}"),
        ("fit / evaluate seconds", lambda r: f"{r['fit_seconds']:.0f} / {r['evaluate_seconds']:.0f}"),
    ]
    print(f"| {'measure':<36} | {'vae':>16} | {'ae (GMM-10 on codes)':>20} |")
    print(f"|{'-' * 38}|{'-' * 18}|{'-' * 22}|")
    for name, cell in rows:
        print(f"| {name:<36} | {cell(results['vae']):>16} | {cell(results['ae']):>20} |")
    print(f"\nreal test digits judged the same way: valid {real['valid_fraction']:.3f}, "
          f"Frechet distance between the two halves {real['frechet_distance']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
