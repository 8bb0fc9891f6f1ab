"""Train + detect on the 3,000-row sensor table of issue 24, in process, on 2 threads: where the time goes.

    .venv/bin/python benchmarks/tables_speed.py                 # 5 repeats of each path
    .venv/bin/python benchmarks/tables_speed.py --repeats 9 --cli-threads 2

Writes aekit.data.synthetic.mixed_table(seed=0) to pump.csv in a temporary folder, then repeats:

- cli: `aekit train ae --data pump.csv` then `aekit detect RUN --data pump.csv --out scores.csv`
  through aekit.cli.run (no interpreter start, imports warm after the first repeat), split into
  the training loop, the run's detector (kNN and scales), the final metrics, the other training
  work (data, folder, commits), report.html, and detect;
- estimator: AutoencoderOutlierDetector().fit(X).decision_function(X) on the same table's features.

torch runs on --threads threads (2: the issue's machine); the commands get --cli-threads when given
(default: none, so each command chooses as a user's would). Prints every repeat and the medians,
with the load average before and after, and the process's CPU seconds (on a busy machine, near what
the wall time would be on an idle one when the work runs on one thread): run it on an otherwise idle machine for the figures quoted
in docs/guides/performance.md. The first repeat (imports, caches) is printed but left out of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import aekit.report
from aekit import data as datasets
from aekit.cli import run as cli_run
from aekit.data.synthetic import mixed_table
from aekit.sklearn import AutoencoderOutlierDetector
from aekit.training import loop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine

fit_module = importlib.import_module("aekit.training.fit")  # the package exports the function fit under that name
PHASES = ("loop", "detector", "metrics", "report")


class Phases:
    """Seconds spent inside some functions of aekit, summed per name while `recording`."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        setattr(owner, attribute, timed)

    def take(self) -> dict[str, float]:
        out, self.seconds = self.seconds, {}
        return out


def data_options(csv: Path) -> list[str]:
    """--data-option drop_nan=True while the table loader leaves empty cells as NaN (no imputation yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = datasets.load(str(csv))
    return [] if np.isfinite(np.asarray(ds.x)).all() else ["--data-option", "drop_nan=True"]


def cli_once(folder: Path, csv: Path, options: list[str], threads: list[str], phases: Phases) -> dict[str, float]:
    run = folder / "run"
    phases.take()  # drop what the estimator path recorded
    cpu, started = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        code = cli_run(["train", "ae", "--data", str(csv), *options, "--out", str(run), "--overwrite", "--quiet",
                        *threads])
        trained = time.perf_counter()
        code = code or cli_run(["detect", str(run), "--data", str(csv), *options, "--out", str(folder / "scores.csv"),
                                "--overwrite", *threads])  # each repeat rewrites the same scores
    done = time.perf_counter()
    if code:
        raise SystemExit(f"aekit exited with {code}")
    split = phases.take()
    split["train"] = trained - started
    split["other training"] = split["train"] - sum(split.get(p, 0.0) for p in PHASES)
    split["detect"] = done - trained
    split["total"] = done - started
    split["cpu"] = time.process_time() - cpu  # all threads' CPU seconds: near the idle wall time on 1 thread
    return split


def estimator_once(x: np.ndarray) -> dict[str, float]:
    cpu, started = time.process_time(), time.perf_counter()
    detector = AutoencoderOutlierDetector(random_state=0).fit(x)
    fitted = time.perf_counter()
    detector.decision_function(x)
    done = time.perf_counter()
    return {"fit": fitted - started, "score": done - fitted, "total": done - started, "cpu": time.process_time() - cpu}


def show(label: str, figures: dict[str, float]) -> str:
    return f"{label:<10} " + "  ".join(f"{k} {v:.3f}" for k, v in figures.items())


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r.get(k, 0.0) for r in rows) for k in rows[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each path (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the process")
    parser.add_argument("--cli-threads", type=int, default=None, help="--threads given to both commands")
    parser.add_argument("--only", choices=["cli", "estimator"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    phases = Phases()
    phases.wrap(loop.Trainer, "run", "loop")
    phases.wrap(fit_module, "_run_detector", "detector")
    phases.wrap(fit_module, "_final_metrics", "metrics")
    phases.wrap(aekit.report, "write_report", "report")
    threads = [] if args.cli_threads is None else ["--threads", str(args.cli_threads)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "pump.csv"
        frame, _ = mixed_table(seed=0)
        frame.to_csv(csv, index=False)
        options = data_options(csv)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = np.asarray(datasets.load(str(csv), **({"drop_nan": True} if options else {})).x, dtype=np.float32)
        print(f"{csv.name}: {frame.shape[0]} rows, {frame.shape[1]} columns -> {x.shape[1]} model inputs; "
              f"options {' '.join(options) or '(none)'}; command threads {args.cli_threads or 'chosen by aekit'}")
        print("start:", machine(), flush=True)
        results: dict[str, list[dict[str, float]]] = {"cli": [], "estimator": []}
        for repeat in range(args.repeats + 1):  # interleaved; repeat 0 warms imports and caches
            for path in ("cli", "estimator"):
                if args.only not in (None, path):
                    continue
                figures = cli_once(folder, csv, options, threads, phases) if path == "cli" else estimator_once(x)
                load = os.getloadavg()[0]
                print(show(f"{path} {'warm-up' if repeat == 0 else repeat}", figures) + f"  (load {load:.2f})",
                      flush=True)
                if repeat:
                    results[path].append(figures)
        print("end:", machine())
        for path, rows in results.items():
            if rows:
                print(show(f"median {path}", medians(rows)) + f"  ({len(rows)} repeats)")


if __name__ == "__main__":
    main()
