"""The conditional VAE's defaults (issue 25): does a cvae built with nothing but its input shape generate the
digit it is asked for? Per seed: the fraction of samples judged the requested class, for every class, and the
test ELBO, so that a default which buys accuracy by giving up the likelihood shows it.

    .venv/bin/python benchmarks/cvae_defaults.py [--data mnist-5k] [--seeds 0,1,2] [--epochs N]
                                                 [--variants "defaults;beta=1.0;latent_dim=8"]

--epochs: left out, the automatic training length ae.fit chooses for the data (what a user gets); give a
number to compare with shorter runs. --variants: ';'-separated option sets added to the defaults
("defaults" = none; e.g. "beta=1.0" is the old default). Training data: the named dataset (mnist-5k: 5,000
MNIST training digits, offline; "digits": scikit-learn's 8x8 digits; an .npz file with arrays x and y).
Test data: for MNIST-sized images the
official MNIST test split (../shared/data/mnist) for mnist-5k, else a seeded fifth of the data held out.

Two judges, both trained on the real training digits only: an RBF support-vector classifier
(scikit-learn's SVC, C=10, the issue's judge) and the project's MLP judge (evaluation.quality.train_judge);
their accuracy on the held-out test digits is printed first. 100 samples of each class per seed, decoded
from prior draws (model.sample(..., labels=)). One torch thread; the load average is printed with the table.
"""

import argparse
import ast
import os
import sys
from pathlib import Path

import numpy as np
import torch
from common import SHARED_MNIST, Timer, machine
from threadpoolctl import threadpool_limits

import aekit as ae
from aekit.evaluation import quality
from aekit.training.loop import evaluate_loss


def parse_variant(text: str) -> dict:
    """'beta=2,latent_dim=8' -> {'beta': 2.0, 'latent_dim': 8}; 'defaults' -> {}."""
    if text.strip() in ("", "defaults"):
        return {}
    options = {}
    for item in text.split(","):
        name, value = item.split("=")
        options[name.strip()] = ast.literal_eval(value.strip())
    return options


def load(args):
    """(train, x_test, y_test): the training Dataset and held-out digits with labels."""
    train = ae.data.load(args.data, **({"label_key": "y"} if args.data.endswith(".npz") else {}))
    if args.data == "mnist-5k" and (Path(args.mnist_dir) / "t10k-images-idx3-ubyte.gz").is_file():
        test = ae.data.load("mnist", split="test", data_dir=args.mnist_dir, download=False)
        return train, np.asarray(test.x, np.float32), np.asarray(test.y)
    rows = np.random.default_rng(0).permutation(len(train))
    cut = len(rows) // 5
    x, y = np.asarray(train.x, np.float32), np.asarray(train.y)
    held = ae.data.Dataset(torch.from_numpy(x[rows[cut:]]), y[rows[cut:]], args.data, None)
    return held, x[rows[:cut]], y[rows[:cut]]


def judges(train, x_test, y_test):
    """The SVM and the MLP judge, trained on the real training digits; their held-out accuracy printed."""
    from sklearn.svm import SVC

    x, y = np.asarray(train.x, np.float32).reshape(len(train), -1), np.asarray(train.y)
    with Timer() as t:
        svm = SVC(C=10, gamma="scale").fit(x, y)
        mlp = quality.train_judge(np.asarray(train.x, np.float32), y, epochs=20, seed=0)
    svm_acc = (svm.predict(x_test.reshape(len(x_test), -1)) == y_test).mean()
    print(f"judges trained on {len(x)} real digits ({t.seconds:.0f} s); accuracy on {len(x_test)} held-out digits: "
          f"SVM (RBF, C=10) {svm_acc:.4f}, MLP {mlp.accuracy(x_test, y_test):.4f}")
    return lambda s: svm.predict(s.reshape(len(s), -1)), lambda s: mlp.predict_proba(s).argmax(1)


def one_run(train, x_test, y_test, options, seed, args, svm, mlp) -> dict:
    model = ae.build("cvae", input_shape=train.input_shape, seed=seed, **options)
    with Timer() as t:
        history = ae.fit(model, train, epochs=args.epochs, seed=seed, verbose=0)
    labels = np.repeat(np.arange(model.config.n_classes), args.per_class)
    samples = model.sample(len(labels), seed=seed, labels=labels)
    svm_judged, mlp_judged = svm(samples), mlp(samples)
    per_class = np.array([(svm_judged[labels == c] == c).mean() for c in range(model.config.n_classes)])
    terms = evaluate_loss(model, torch.from_numpy(x_test), labels=torch.from_numpy(y_test))
    c = model.config
    return {"config": f"beta={c.beta:g}, latent_dim={c.latent_dim}, hidden={c.hidden}", "epochs": len(history),
            "per_class": per_class, "svm": float((svm_judged == labels).mean()),
            "mlp": float((mlp_judged == labels).mean()), "elbo": -(terms["reconstruction"] + terms["kl"]),
            "reconstruction": terms["reconstruction"], "kl": terms["kl"], "seconds": t.seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist-5k")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="default: ae.fit's automatic length")
    parser.add_argument("--variants", default="defaults")
    parser.add_argument("--per-class", type=int, default=100, help="samples of each class per seed")
    parser.add_argument("--mnist-dir", default=str(SHARED_MNIST))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"python {' '.join(sys.argv)}\nbefore: {machine()}")
    with threadpool_limits(1):
        train, x_test, y_test = load(args)
        svm, mlp = judges(train, x_test, y_test)
        print(f"\n| cvae on {args.data} | seed | epochs | judged the asked class (SVM), classes 0-9 | mean (SVM) | "
              "mean (MLP) | test ELBO (nats) | reconstruction | KL | training s |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for variant in args.variants.split(";"):
            options, means = parse_variant(variant), []
            for seed in map(int, args.seeds.split(",")):
                r = one_run(train, x_test, y_test, options, seed, args, svm, mlp)
                means.append((r["svm"], r["mlp"], r["elbo"]))
                print(f"| {variant.strip()}: {r['config']} | {seed} | {r['epochs']} | "
                      f"{' '.join(f'{a:.2f}' for a in r['per_class'])} | {r['svm']:.3f} | {r['mlp']:.3f} | "
                      f"{r['elbo']:.2f} | {r['reconstruction']:.2f} | {r['kl']:.2f} | {r['seconds']:.0f} |", flush=True)
            m = np.array(means)
            print(f"| {variant.strip()}: mean of {len(m)} seeds | | | | {m[:, 0].mean():.3f} (lowest {m[:, 0].min():.3f})"
                  f" | {m[:, 1].mean():.3f} | {m[:, 2].mean():.2f} | | | |", flush=True)
    print(f"after: load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
