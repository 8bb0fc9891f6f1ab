"""Anomaly detection on mixed-type tables (issue 24): our detector, through the CLI and the estimator, against
scikit-learn's IsolationForest and PyOD's ECOD, COPOD, HBOS, KNN and AutoEncoder on a one-hot + impute pipeline,
on `aekit.data.synthetic.mixed_table`, where the faulty rows and the column at fault are known.

    pip install -e '.[bench]'                                    # PyOD, for the peers
    .venv/bin/python benchmarks/mixed_tables.py                  # 10 settings x 3 seeds x 3,000 rows
    .venv/bin/python benchmarks/mixed_tables.py --quick          # 4 settings, 1 seed, 1,000 rows
    .venv/bin/python benchmarks/mixed_tables.py --design grid --out raw.csv

Design: one factor at a time (`--design ofat`, the default) around a base table, `mixed_table()`'s
defaults: 6 sensors, categoricals of 3 and 50 levels, 2% empty cells, relation and spike faults on 3% of
the rows. Each factor moves alone: categoricals (), (3,), (3, 50), (3, 50, 500); empty cells 0, 2%, 10%;
one kind of fault at a time: relation, spike, category (an impossible line/product pair), drift. That is
10 settings; `--design grid` crosses the three factors (4 x 3 x 4 = 48).

Protocol: every detector sees the whole table (unsupervised: the anomalies stay in) and scores the rows it
was fitted on, with its defaults.
- cli: the table as a CSV in a temp folder, `aekit train ae --data f.csv --out RUN --seed S` then
  `aekit detect RUN --data f.csv --explain --out scores.csv`, in process (aekit.cli.run); the CLI finds
  the id, the timestamp and the free text itself. Top-1: the first name of top_features.
- ours: `AutoencoderOutlierDetector(random_state=S)` on the DataFrame; scores and top-1 from
  `.explain(frame)` (per file column; its rows sum to decision_function).
- peers, on one pipeline (scikit-learn ColumnTransformer): id, timestamp and note dropped; numeric
  columns median-imputed then StandardScaler; categorical columns with empty cells as their own level
  "(missing)", then OneHotEncoder(handle_unknown="ignore", min_frequency=5): levels seen fewer than 5
  times share one column. IsolationForest(random_state=S): -score_samples; PyOD: decision_scores_ (its
  scores of the fitted rows). They give no explanation ("-").
A detector that raises (today: ours on empty cells) is a row note, not a crash.

Metrics per setting, seed and detector: ROC AUC of the scores against truth.is_anomaly; top-1 explanation
accuracy, the share of the anomalies whose top column is in truth.culprits (the changed column; for an
impossible pair of categories either of the two; chance: about 1 / the feature columns);
fit + score seconds (the CSV written before the clock starts; every peer run once on a small table first,
so PyOD's imports and numba's compiling are not timed; torch is imported before). Prints one line per run,
a table per setting (mean over seeds with the standard deviation), then the summary: mean AUC (failures
left out and counted), mean rank (a failure ranks last), mean top-1, total seconds; with the load average,
the threads and the commit measured.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
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

from aekit.data.synthetic import mixed_table  # noqa: E402

OURS = ["cli", "ours"]
PEERS = ["IsolationForest", "ECOD", "COPOD", "HBOS", "KNN", "AutoEncoder"]
DROPPED = ["id", "timestamp", "note"]  # what the peers' pipeline leaves out (our CLI finds them itself)
BASE = {"categoricals": (3, 50), "missing": 0.02, "faults": ("relation", "spike")}
LEVELS = {
    "categoricals": [(), (3,), (3, 50), (3, 50, 500)],
    "missing": [0.0, 0.02, 0.10],
    "faults": [("relation",), ("spike",), ("category",), ("drift",)],
}


def code_version() -> str:
    """aekit's version and commit, and whether src/ differs from it (the detector measured)."""
    import subprocess

    import aekit

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = " + uncommitted changes in src/" if git("status", "--porcelain", "--", "src") else ""
    return f"aekit {aekit.__version__}, commit {git('rev-parse', '--short', 'HEAD') or '?'}{dirty}"


def label(setting: dict) -> str:
    cats = ",".join(map(str, setting["categoricals"])) or "none"
    return f"cats={cats} missing={setting['missing']:g} fault={'+'.join(setting['faults'])}"


def matches(setting: dict, words: str) -> bool:
    """Whether every word of `words` ("missing=0", "cats=3,50 fault=drift") is one of the label's words."""
    return set(words.split()) <= set(label(setting).split())


def settings(design: str = "ofat") -> list[dict]:
    """The tables to generate: the base and each factor's other levels (ofat), or every combination (grid)."""
    if design == "grid":
        return [dict(zip(LEVELS, combo)) for combo in itertools.product(*LEVELS.values())]
    out = [dict(BASE)]
    for factor, levels in LEVELS.items():
        out += [{**BASE, factor: level} for level in levels if level != BASE[factor]]
    return out


def peer_pipeline(frame: pd.DataFrame):
    """Impute, scale and one-hot encode the feature columns (the peers' input)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = frame.drop(columns=[c for c in DROPPED if c in frame])
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features if c not in numeric]
    transformer = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                      OneHotEncoder(handle_unknown="ignore", min_frequency=5,
                                                    sparse_output=False)), categorical),
    ])
    return transformer.fit_transform(features.astype({c: object for c in categorical})).astype(np.float64)


def peer(name: str, seed: int):
    if name == "IsolationForest":
        from sklearn.ensemble import IsolationForest
        return IsolationForest(random_state=seed)
    if name == "COPOD":
        from pyod.models.copod import COPOD
        return COPOD()
    if name == "HBOS":
        from pyod.models.hbos import HBOS
        return HBOS()
    from adbench import peer as adbench_peer  # ECOD, KNN, AutoEncoder(verbose=0): as the ADBench benchmark makes them
    return adbench_peer(name)


@contextlib.contextmanager
def _quiet():
    """The CLI's and the estimator's messages and warnings out of the benchmark's output; stderr kept for the note."""
    err = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        warnings.simplefilter("ignore")
        yield err


def via_cli(csv: Path, seed: int, threads: int):
    """(scores, top columns) from `aekit train ae` then `aekit detect --explain` on the same CSV."""
    from aekit.cli import run

    folder = csv.parent
    for argv in (["train", "ae", "--data", str(csv), "--out", str(folder / "run"), "--seed", str(seed),
                  "--threads", str(threads), "--quiet", "--overwrite"],
                 ["detect", str(folder / "run"), "--data", str(csv), "--explain", "--out", str(folder / "scores.csv"),
                  "--threads", str(threads), "--overwrite"]):  # each seed rewrites the same scores
        with _quiet() as err:
            code = run(argv)
        if code != 0:
            raise RuntimeError(f"aekit {argv[0]} exit {code}: " + err.getvalue().strip().splitlines()[-1])
    out = pd.read_csv(folder / "scores.csv")
    top = out["top_features"].fillna("").astype(str).str.split(";").str[0].to_numpy()
    return out["score"].to_numpy(np.float64), top


def via_estimator(frame: pd.DataFrame, seed: int, threads: int):
    from aekit.sklearn import AutoencoderOutlierDetector

    with _quiet():
        detector = AutoencoderOutlierDetector(random_state=seed, n_threads=threads).fit(frame)
        shares = detector.explain(frame)
    return shares.sum(1), np.asarray(detector.feature_names_in_)[shares.argmax(1)]


def run_one(name: str, frame: pd.DataFrame, csv: Path, seed: int, threads: int):
    """(scores, top columns or None, note); scores None when the detector failed."""
    try:
        if name == "cli":
            scores, top = via_cli(csv, seed, threads)
        elif name == "ours":
            scores, top = via_estimator(frame, seed, threads)
        else:
            x = peer_pipeline(frame)
            with _quiet():
                model = peer(name, seed).fit(x)
            scores = -model.score_samples(x) if name == "IsolationForest" else model.decision_scores_
            scores, top = np.asarray(scores, dtype=np.float64), None
    except Exception as e:  # a detector's failure (ours on empty cells, today) is a result, reported
        return None, None, f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
    if len(scores) != len(frame) or not np.isfinite(scores).all():
        return None, None, "scores missing or not finite"
    return scores, top, ""


def benchmark(setting: dict, seed: int, rows: int, detectors: list[str], threads: int) -> list[dict]:
    """One table, every detector: a raw result per detector."""
    frame, truth = mixed_table(n_rows=rows, categoricals=setting["categoricals"], missing=setting["missing"],
                               faults=setting["faults"], seed=seed)
    y = truth["is_anomaly"].to_numpy()
    culprits = [set(c.split(",")) for c in truth["culprits"].to_numpy()[y == 1]]
    n_features = frame.shape[1] - len(DROPPED)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "f.csv"
        frame.to_csv(csv, index=False)
        for name in detectors:
            started = time.perf_counter()
            scores, top, note = run_one(name, frame, csv, seed, threads)
            seconds = time.perf_counter() - started
            auc = float(roc_auc_score(y, scores)) if scores is not None else None
            top1 = (float(np.mean([t in c for t, c in zip(top[y == 1], culprits)]))
                    if top is not None and y.any() else None)
            out.append({"setting": label(setting), "categoricals": ",".join(map(str, setting["categoricals"])),
                        "missing": setting["missing"], "faults": "+".join(setting["faults"]), "seed": seed,
                        "rows": rows, "detector": name, "auc": auc, "top1": top1, "chance_top1": 1 / n_features,
                        "seconds": seconds, "note": note})
    return out


def _mean_sd(values, digits: int = 3) -> str:
    values = [v for v in values if v is not None and not pd.isna(v)]
    if not values:
        return "-"
    sd = f" ± {np.std(values):.{digits}f}" if len(values) > 1 else ""
    return f"{np.mean(values):.{digits}f}{sd}"


def with_ranks(results: pd.DataFrame) -> pd.DataFrame:
    """Rank of each detector's AUC among the detectors of its table and seed (1 = best; a failure ranks last)."""
    results = results.copy()
    auc = results["auc"].astype(float).fillna(-1.0)
    results["rank"] = auc.groupby([results["setting"], results["seed"]]).transform(lambda a: rankdata(-a))
    return results


def setting_table(results: pd.DataFrame) -> str:
    lines = ["| detector | AUC (± sd over seeds) | top-1 explanation | fit+score s | note |", "|---|---|---|---|---|"]
    for name, group in results.groupby("detector", sort=False):
        notes = sorted(set(n for n in group["note"] if n))
        failed = group["auc"].isna().sum()
        note = (f"{failed} of {len(group)} failed: " if failed else "") + "; ".join(notes)
        lines.append(f"| {name} | {_mean_sd(group['auc'])} | {_mean_sd(group['top1'])} | "
                     f"{group['seconds'].mean():.2f} | {note} |")
    return "\n".join(lines)


def by_setting(results: pd.DataFrame, metric: str) -> str:
    """One line per setting, one column per detector: the metric's mean over seeds (FAIL: every seed failed)."""
    names = [d for d in results["detector"].unique() if metric != "top1" or results.loc[results["detector"] == d,
                                                                                        "top1"].notna().any()]
    lines = [f"| setting | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    for setting, group in results.groupby("setting", sort=False):
        cells = []
        for name in names:
            values = group.loc[group["detector"] == name, metric].dropna()
            cells.append(f"{values.mean():.3f}" if len(values) else "FAIL")
        lines.append(f"| {setting} | {' | '.join(cells)} |")
    return "\n".join(lines)


def summary(results: pd.DataFrame) -> str:
    results = with_ranks(results)
    n = results["detector"].nunique()
    lines = [f"| detector | mean AUC | mean rank of {n} | mean top-1 | total fit+score s |", "|---|---|---|---|---|"]
    for name, group in results.groupby("detector", sort=False):
        failed = group["auc"].isna().sum()
        auc = _mean_sd(group["auc"]).split(" ")[0]
        if failed:
            auc += f" ({failed} of {len(group)} runs failed, left out)"
        lines.append(f"| {name} | {auc} | {group['rank'].mean():.2f} | {_mean_sd(group['top1']).split(' ')[0]} | "
                     f"{group['seconds'].sum():.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=3000, help="rows of each table")
    parser.add_argument("--detectors", nargs="+", default=[*OURS, *PEERS], help=f"any of {', '.join(OURS + PEERS)}")
    parser.add_argument("--design", choices=["ofat", "grid"], default="ofat",
                        help="one factor at a time around the base table, or every combination")
    parser.add_argument("--settings", nargs="+", default=None,
                        help="keep the settings whose label has all the words of one of these, e.g. 'fault=drift' "
                             "'cats=none' 'missing=0 fault=spike'")
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 1,000 rows, 4 settings: the base, no empty cells, category faults, drift faults")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (ours and PyOD's AutoEncoder)")
    parser.add_argument("--out", type=Path, default=None, help="CSV of every raw result")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.detectors) - set(OURS + PEERS))
    if unknown:
        parser.error(f"--detectors: unknown {unknown}; choose from {OURS + PEERS}")
    chosen = settings(args.design)
    if args.quick:
        args.seeds, args.rows = args.seeds[:1], 1000
        chosen = [BASE, {**BASE, "missing": 0.0}, {**BASE, "faults": ("category",)}, {**BASE, "faults": ("drift",)}]
    if args.settings:
        chosen = [s for s in chosen if any(matches(s, part) for part in args.settings)]
    if not chosen:
        parser.error(f"--settings {args.settings} match none of: {[label(s) for s in settings(args.design)]}")
    torch.set_num_threads(args.threads)
    peers = [d for d in args.detectors if d in PEERS]
    benchmark({**BASE, "missing": 0.0}, 0, 200, peers, args.threads)  # warm-up: the peers' imports, numba's compiling
    print(f"start: {machine()}; {code_version()}; {len(chosen)} settings ({args.design}) x seeds {args.seeds} x {args.rows} rows",
          flush=True)
    raw = []
    for setting in chosen:
        for seed in args.seeds:
            rows = benchmark(setting, seed, args.rows, args.detectors, args.threads)
            raw += rows
            cells = [f"{r['detector']}={'FAIL' if r['auc'] is None else format(r['auc'], '.3f')}"
                     + (f"/top1 {r['top1']:.2f}" if r["top1"] is not None else "") + f"/{r['seconds']:.1f}s"
                     for r in rows]
            print(f"{label(setting)} seed {seed}: " + " ".join(cells), flush=True)
    results = pd.DataFrame(raw)
    if args.out is not None:
        results.to_csv(args.out, index=False)
    for setting, group in results.groupby("setting", sort=False):
        print(f"\n{setting} ({args.rows} rows, seeds {args.seeds}; top-1 by chance "
              f"{group['chance_top1'].iloc[0]:.2f})")
        print(setting_table(group))
    print("\nAUC by setting (mean over seeds)")
    print(by_setting(results, "auc"))
    if results["top1"].notna().any():
        print("\ntop-1 explanation accuracy by setting (mean over seeds)")
        print(by_setting(results, "top1"))
    print(f"\nsummary over {len(chosen)} settings x {len(args.seeds)} seeds; end: {machine()}")
    print(summary(results))
    return results


if __name__ == "__main__":
    main()
