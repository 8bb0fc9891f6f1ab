"""The figures of issue 15, measured: factor analysis and PPCA against scikit-learn, super-resolution against
bicubic upsampling, the conditional VAE's judged accuracy, KL warm-up and free bits, and the
importance-weighted objective against the ELBO.

    .venv/bin/python benchmarks/vae_options.py [--parts fa,superres,cvae,regularisers,iwae] [--epochs 30]
                                                [--samples 1000] [--ll-examples 1000] [--seconds 60]

Training data: mnist-5k (5,000 MNIST training digits, offline); test data: the official MNIST test split
(../shared/data/mnist). Log-likelihoods are importance-sampled with K = --samples on the first
--ll-examples test digits (nats per digit, Bernoulli decoders on pixels in [0, 1]). One torch thread.
"""

import argparse
import math
import os

import numpy as np
import torch
from common import SHARED_MNIST, Timer, machine
from threadpoolctl import threadpool_limits

import aekit as ae
from aekit.evaluation import metrics, quality
from aekit.tour import dequantise

NETWORK = dict(input_shape=(1, 28, 28), hidden=(512, 256))


def fa_against_sklearn(args, train, test):
    """Factor analysis and PPCA: our exact log-likelihood against scikit-learn's score on the same data."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA, FactorAnalysis

    raw = load_digits().data
    digits = ((raw + np.random.default_rng(0).random(raw.shape)) / 17.0).astype(np.float32)
    mnist = dequantise(np.asarray(train.x, dtype=np.float32), 0).reshape(len(train), -1)
    print("\n| data | k | model | ours (nats per example) | scikit-learn | difference | ours s | scikit-learn s |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, x, k in (("digits 8x8, dequantised", digits, 8), ("mnist-5k, dequantised", mnist, 16)):
        x64 = x.astype(np.float64)
        for kind, reference in (("ppca", PCA(k)), ("factor_analysis", FactorAnalysis(k, random_state=0))):
            model = ae.build(kind, input_shape=(x.shape[1],), latent_dim=k)
            with Timer() as ours:
                if kind == "ppca":  # the closed form
                    model.initialise_from_data(torch.from_numpy(x))
                else:  # the PPCA start, then one EM iteration per epoch
                    ae.fit(model, x, epochs=args.fa_epochs, batch_size=1024, val_fraction=0, verbose=0)
            ll = float(metrics.exact_log_likelihood(model, x).mean())
            with Timer() as theirs:
                score = reference.fit(x64).score(x64)
            how = "closed form" if kind == "ppca" else f"{args.fa_epochs} EM epochs"
            print(f"| {name} | {k} | {kind} ({how}) | {ll:.3f} | {score:.3f} | {100 * (ll - score) / abs(score):+.4f}% "
                  f"| {ours.seconds:.1f} | {theirs.seconds:.1f} |")


def cvae_accuracy(args, train, test):
    """The conditional VAE's samples, judged: the fraction classified as the requested digit."""
    with Timer() as t:
        judge = quality.judge_for(train)
    print(f"\njudge: quality.judge_for(mnist-5k) (784-512-256-10 MLP, 20 epochs), accuracy on the 10,000 test "
          f"digits {judge.accuracy(test.x, test.y):.4f} ({t.seconds:.1f} s)")
    print("\n| cvae 784-512-256-16 | epochs | judged the requested digit (1,000 samples) | lowest digit | "
          "test log p(x\\|y) (nats) | training s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    labels = np.repeat(np.arange(10), 100)
    # beta=1.0 said explicitly: the ELBO's own weight (the cvae's default is now "auto", 2.8 here: see
    # benchmarks/cvae_defaults.py); the first rows are the earlier defaults.
    for options, epochs in (({"beta": 1.0}, 30), ({"beta": 1.0}, 100), ({"beta": 1.0, "label_dropout": 0.1}, 100),
                            ({"beta": 2.0}, 30), ({"beta": 2.0}, 50), ({"beta": 2.0, "label_dropout": 0.1}, 50),
                            ({}, 30)):
        model = ae.build("cvae", latent_dim=16, seed=0, **NETWORK, **options)
        with Timer() as t:
            ae.fit(model, train, epochs=epochs, seed=0, verbose=0)
        samples = model.sample(1000, seed=0, labels=labels)
        judged = judge.predict_proba(samples).argmax(1)
        per_digit = np.array([(judged[labels == c] == c).mean() for c in range(10)])
        ll = metrics.log_likelihood(model, test, samples=args.samples, rows=torch.arange(args.ll_examples),
                                    labels=test.y)
        name = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults (beta auto: 2.8)"
        print(f"| {name} | {epochs} | {(judged == labels).mean():.3f} | {per_digit.min():.2f} "
              f"(digit {per_digit.argmin()}) | {ll.mean():.2f} | {t.seconds:.0f} |", flush=True)


def _measure(model, test, args) -> tuple[float, float, int]:
    ll = metrics.log_likelihood(model, test, samples=args.samples, rows=torch.arange(args.ll_examples))
    kl = metrics.kl_per_dimension(model, test)
    return float(ll.mean()), float(ll.std(ddof=1) / math.sqrt(len(ll))), int((kl > 0.01).sum())


def regularisers(args, train, test):
    """KL warm-up and free bits: active latent dimensions (KL > 0.01 nats) and the test log-likelihood."""
    print(f"\n| VAE 784-512-256-32, {args.epochs} epochs | active dimensions (of 32) | test log-likelihood (nats) | "
          "training s |")
    print("| --- | ---: | ---: | ---: |")
    variants = {"plain ELBO": {}, f"kl_warmup_epochs={args.epochs // 3}": {"kl_warmup_epochs": args.epochs // 3},
                "free_bits=0.25": {"free_bits": 0.25}, "free_bits=1.0": {"free_bits": 1.0},
                f"kl_warmup_epochs={args.epochs // 3}, free_bits=0.25": {"kl_warmup_epochs": args.epochs // 3,
                                                                           "free_bits": 0.25}}
    for name, options in variants.items():
        model = ae.build("vae", latent_dim=32, seed=0, **NETWORK, **options)
        with Timer() as t:
            ae.fit(model, train, epochs=args.epochs, seed=0, val_fraction=0, verbose=0)
        ll, se, active = _measure(model, test, args)
        print(f"| {name} | {active} | {ll:.2f} ± {se:.2f} | {t.seconds:.0f} |", flush=True)


def iwae_against_vae(args, train, test):
    """The same network trained for the same wall-clock time with the ELBO and with the IWAE bound."""
    print(f"\n| objective, {args.seconds:.0f} s of training | epochs | active dimensions (of 32) | "
          "test log-likelihood (nats) |")
    print("| --- | ---: | ---: | ---: |")
    for name, options in (("ELBO (vae)", {}), ("IWAE, K = 5", {"objective": "iwae", "iwae_samples": 5}),
                          ("IWAE, K = 20", {"objective": "iwae", "iwae_samples": 20})):
        model = ae.build("vae", latent_dim=32, seed=0, **NETWORK, **options)
        spent = []

        def budget(row, _model, spent=spent):
            spent.append(row["seconds"])
            return sum(spent) >= args.seconds

        ae.fit(model, train, epochs=10_000, seed=0, val_fraction=0, verbose=0, callback=budget)
        ll, se, active = _measure(model, test, args)
        print(f"| {name} | {len(spent)} ({sum(spent):.0f} s) | {active} | {ll:.2f} ± {se:.2f} |", flush=True)


def super_resolution(args, train, test):
    """noise='downsample': PSNR of the restored test digits against bicubic upsampling (Pillow)."""
    from PIL import Image

    from aekit.models.corruption import corrupt, shrink

    x = np.asarray(test.x[:1000], dtype=np.float32)
    print(f"\n| model (mnist-5k, {args.sr_epochs} epochs) | factor | blocks PSNR (dB) | bicubic PSNR (dB) | "
          "autoencoder PSNR (dB) | training s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    psnr = lambda y: metrics.psnr_db(float(((y - x) ** 2).mean()))  # noqa: E731
    for factor in (2, 4):
        low = shrink(torch.from_numpy(x), factor).numpy()
        bicubic = np.stack([[np.asarray(Image.fromarray(c).resize((28, 28), Image.BICUBIC)) for c in im]
                            for im in low]).clip(0, 1)
        blocky = corrupt(torch.from_numpy(x), "downsample", factor).numpy()
        for name, options in (("MLP 784-256-128 (the tour's)", dict(hidden=(256,), latent_dim=128)),
                              ("conv (32, 64 channels), code 256", dict(architecture="conv", channels=(32, 64),
                                                                         hidden=(), latent_dim=256))):
            model = ae.build("denoising", input_shape=(1, 28, 28), noise="downsample", noise_level=factor, **options)
            with Timer() as t:
                ae.fit(model, train, epochs=args.sr_epochs, batch_size=64, lr=3e-3, val_fraction=0, verbose=0)
            print(f"| {name} | {factor} | {psnr(blocky):.2f} | {psnr(bicubic):.2f} | "
                  f"{psnr(np.asarray(model.reconstruct(blocky))):.2f} | {t.seconds:.0f} |", flush=True)


PARTS = {"fa": fa_against_sklearn, "superres": super_resolution, "cvae": cvae_accuracy, "regularisers": regularisers, "iwae": iwae_against_vae}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--fa-epochs", type=int, default=30, help="EM epochs of factor analysis")
    parser.add_argument("--sr-epochs", type=int, default=10, help="epochs of the super-resolution models")
    parser.add_argument("--samples", type=int, default=1000, help="K for the log-likelihoods")
    parser.add_argument("--ll-examples", type=int, default=1000, help="test digits for the log-likelihoods")
    parser.add_argument("--seconds", type=float, default=60.0, help="training time for each objective (iwae)")
    parser.add_argument("--data-dir", default=str(SHARED_MNIST))
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = ae.data.load("mnist-5k")
    test = ae.data.load("mnist", split="test", data_dir=args.data_dir, download=False)
    print(f"before: {machine()}")
    with threadpool_limits(1):
        for part in args.parts.split(","):
            with Timer() as t:
                PARTS[part](args, train, test)
            print(f"[{part}: {t.seconds:.0f} s, load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}]",
                  flush=True)
    print(f"after: {machine()}")


if __name__ == "__main__":
    main()
