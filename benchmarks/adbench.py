"""Anomaly detection on the 14 ADBench tables of ../shared/data/adbench: our default detector against
PyOD's IForest, ECOD, KNN, PCA, AutoEncoder and VAE (their defaults), all in one process, one thread.

    pip install -e '.[bench]'                      # PyOD, for the peers
    .venv/bin/python benchmarks/adbench.py --seeds 0 1 2
    .venv/bin/python benchmarks/adbench.py --seeds 0 --detectors ours cli      # the CLI path too
    .venv/bin/python benchmarks/adbench.py --protocol raw                      # features not standardised

Protocol (../shared/data/adbench/README.md): stratified 70/30 split (random_state = seed), training rows
keep their anomalies (unsupervised; --protocol novelty keeps only the normal ones), at most 3,000
training and 3,000 test rows (stratified subsample), features standardised with the training rows'
mean and std (--protocol raw: as given), AUC-ROC of the test scores. Every detector fits on the
training rows and scores the test rows; the time is fit + score, detectors interleaved per table and
seed after one warm-up each. "ours" is AutoencoderOutlierDetector() with every default; "cli" writes
the rows to CSV files and runs `aekit train ae --data train.csv` then `aekit detect`.

Prints one line per table and seed, then the table: mean AUC (a failed run is left out of the mean
and counted), mean rank (a failure ranks last, ties share their average rank) and total seconds; with
the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from common import REPO, machine  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from aekit.sklearn import AutoencoderOutlierDetector  # noqa: E402

ADBENCH = REPO.parent / "shared" / "data" / "adbench"
PEERS = ["IForest", "ECOD", "KNN", "PCA", "AutoEncoder", "VAE"]
CAP = 3000


def tables() -> list[str]:
    return sorted((p.stem for p in ADBENCH.glob("*.npz")), key=lambda s: int(s.split("_")[0]))


def protocol(name: str, seed: int, kind: str):
    data = np.load(ADBENCH / f"{name}.npz")
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    if len(x_train) > CAP:
        x_train, _, y_train, _ = train_test_split(x_train, y_train, train_size=CAP, stratify=y_train, random_state=seed)
    if len(x_test) > CAP:
        x_test, _, y_test, _ = train_test_split(x_test, y_test, train_size=CAP, stratify=y_test, random_state=seed)
    if kind == "novelty":
        x_train = x_train[y_train == 0]
    if kind != "raw":
        mean, std = x_train.mean(0), x_train.std(0)
        std[std == 0] = 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return x_train.astype(np.float32), x_test.astype(np.float32), y_test


def peer(name: str):
    if name == "IForest":
        from pyod.models.iforest import IForest
        return IForest()
    if name == "ECOD":
        from pyod.models.ecod import ECOD
        return ECOD()
    if name == "KNN":
        from pyod.models.knn import KNN
        return KNN()
    if name == "PCA":
        from pyod.models.pca import PCA
        return PCA()
    if name == "AutoEncoder":
        from pyod.models.auto_encoder import AutoEncoder
        return AutoEncoder(verbose=0)
    from pyod.models.vae import VAE
    return VAE(verbose=0)


def via_cli(x_train, x_test, seed) -> np.ndarray:
    """`aekit train ae --data train.csv` then `aekit detect RUN --data test.csv`, in process."""
    from aekit.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        columns = [f"f{j}" for j in range(x_train.shape[1])]
        pd.DataFrame(x_train, columns=columns).to_csv(tmp / "train.csv", index=False)
        pd.DataFrame(x_test, columns=columns).to_csv(tmp / "test.csv", index=False)
        main.main(["train", "ae", "--data", str(tmp / "train.csv"), "--out", str(tmp / "run"), "--quiet",
                   "--seed", str(seed), "--threads", "1"], standalone_mode=False)
        main.main(["detect", str(tmp / "run"), "--data", str(tmp / "test.csv"), "--out", str(tmp / "s.csv"),
                   "--threads", "1"], standalone_mode=False)
        return pd.read_csv(tmp / "s.csv")["score"].to_numpy()


def run(name: str, x_train, x_test, seed: int):
    """Scores of x_test, or None and the error when the detector fails (PyOD PCA on a constant column)."""
    if name == "ours":
        return AutoencoderOutlierDetector(random_state=seed, n_threads=1).fit(x_train).decision_function(x_test), ""
    if name == "cli":
        return via_cli(x_train, x_test, seed), ""
    try:
        scores = np.asarray(peer(name).fit(x_train).decision_function(x_test), dtype=np.float64)
    except Exception as e:  # a peer's own failure (PyOD PCA on a constant column) is a result, reported
        return None, f"{type(e).__name__}: {str(e)[:100]}"
    return (scores, "") if np.isfinite(scores).all() else (None, "non-finite scores")


def summary(results: dict, keys: list) -> str:
    names = list(results)
    ranks = {d: [] for d in names}
    for key in keys:
        values = [results[d][key][0] for d in names]
        for d, r in zip(names, rankdata([-(v if v is not None else -1.0) for v in values])):
            ranks[d].append(r)
    lines = [f"| detector | mean AUC | mean rank of {len(names)} | total fit+score s |", "|---|---|---|---|"]
    for d in names:
        aucs = [results[d][k][0] for k in keys]
        ok = [a for a in aucs if a is not None]
        failed = f" ({len(aucs) - len(ok)} failed runs left out)" if len(ok) < len(aucs) else ""
        seconds = sum(results[d][k][1] for k in keys)
        lines.append(f"| {d} | {np.mean(ok):.3f}{failed} | {np.mean(ranks[d]):.2f} | {seconds:.1f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--detectors", nargs="+", default=["ours", *PEERS], help=f"ours, cli, {', '.join(PEERS)}")
    parser.add_argument("--protocol", choices=["standard", "raw", "novelty"], default="standard")
    parser.add_argument("--tables", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # PyOD's own (PCA divides by zero on constant columns)
    names = args.tables or tables()
    warm = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    for d in args.detectors:
        run(d, warm, warm, 0)
    print("start:", machine(), flush=True)
    results = {d: {} for d in args.detectors}
    for name in names:
        for seed in args.seeds:
            x_train, x_test, y_test = protocol(name, seed, args.protocol)
            line = []
            for d in args.detectors:
                started = time.perf_counter()
                scores, error = run(d, x_train, x_test, seed)
                seconds = time.perf_counter() - started
                auc = float(roc_auc_score(y_test, scores)) if scores is not None else None
                results[d][(name, seed)] = (auc, seconds)
                line.append(f"{d}={'FAIL' if auc is None else f'{auc:.3f}'}/{seconds:.2f}s" + (f" [{error}]" if error else ""))
            print(f"{name:18s} seed {seed}  " + " ".join(line), flush=True)
    print(f"\n{len(names)} tables x {len(args.seeds)} seeds, protocol {args.protocol}; end: {machine()}")
    print(summary(results, [(n, s) for n in names for s in args.seeds]))


if __name__ == "__main__":
    main()
