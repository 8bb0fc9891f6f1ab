"""The tour: the lectures' experiments end to end, in one self-contained HTML report (`aekit tour [--quick]`).

common.py holds what the sections share: the Budget (epochs and sizes per mode), the Tour (the seeded split of
the digits and the helpers that train, measure and judge on it) and small helpers (dequantise, bits_per_pixel,
in_band). Each other module is one section of the report, named as in SECTIONS ("2d" is two_d.py): its `run(tour)`
trains what it needs, measures it, and returns a report Section with one short paragraph saying what it shows;
its docstring says which lecture experiment it reproduces. run_tour runs them in SECTIONS order and numbers them.
Everything is seeded; `quick` shrinks epochs and data so the whole tour runs in about 70 s on an idle machine
(common.QUICK_IDLE_SECONDS); every tour ends with the time it took (time_taken).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from aekit.report.html import Page, Section
from aekit.tour import (
    anomaly,
    circle,
    compression,
    contractive,
    denoising,
    factor_analysis,
    generation,
    ones_and_eights,
    pca,
    ring,
    sparse,
    spiral,
    stacked,
    super_resolution,
    two_d,
    vae,
)
from aekit.tour.common import Budget, Tour, bits_per_pixel, dequantise, in_band

__all__ = ["SECTIONS", "Budget", "Tour", "bits_per_pixel", "dequantise", "in_band", "run_tour", "time_taken"]

# The sections in the report's order: name -> the function that runs it. "generation" samples the VAE that
# "vae" trains, so it comes after it; the global torch generator also runs through them in this order.
SECTIONS: dict[str, Callable[[Tour], Section]] = {
    "pca": pca.run, "factor_analysis": factor_analysis.run, "circle": circle.run, "spiral": spiral.run,
    "2d": two_d.run, "sparse": sparse.run, "denoising": denoising.run, "super_resolution": super_resolution.run,
    "contractive": contractive.run, "stacked": stacked.run, "vae": vae.run, "ring": ring.run,
    "ones_and_eights": ones_and_eights.run, "generation": generation.run, "anomaly": anomaly.run,
    "compression": compression.run,
}


def run_tour(data: str = "mnist-5k", out="runs/tour", quick: bool = False, seed: int = 0, echo=print) -> Path:
    """Run the experiments (SECTIONS) and write out/tour.html; returns its path."""
    out = Path(out)
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tour = Tour(data, quick, seed)
        page = Page("The autoencoder family: a tour",
                    intro=f"The lectures' experiments on {tour.name} ({len(tour.x_train)} training and {len(tour.x_test)} "
                          f"test images) and toy sets, {'quick mode' if quick else 'default mode'}, seed {seed}. "
                          "Errors are per pixel on held-out data unless stated.")
        for number, run in enumerate(SECTIONS.values(), 1):
            t0 = time.perf_counter()
            section = run(tour)
            section.title = f"{number}. {section.title}"
            section.seconds = time.perf_counter() - t0
            echo(f"[{time.perf_counter() - started:6.1f} s] {section.title}")
            page.sections.append(section)
    took = time_taken(time.perf_counter() - started, time.process_time() - cpu_started, quick)
    page.footer = f"aekit tour --data {data} --out {out}{' --quick' if quick else ''} --seed {seed}\n{took}"
    out.mkdir(parents=True, exist_ok=True)
    path = page.write(out / "tour.html")
    echo(took)
    return path


def time_taken(wall: float, cpu: float, quick: bool) -> str:
    """The tour's closing line: the time it took here (wall and CPU seconds, torch threads, load average) next
    to the time measured on an idle machine (Budget.idle_seconds), so a slow run can tell load from a bug."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = torch.get_num_threads()
    idle = Budget.for_mode(quick).idle_seconds
    return (f"tour done in {wall:.0f} s ({cpu:.0f} s of CPU, {threads} torch thread{'s' * (threads > 1)}, load average "
            f"{load:.1f})" + (f"; on an idle machine it takes {idle} s" if idle else ""))
