"""The tour as a newcomer sees it: `aekit tour --quick`, opened in headless Chromium."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def tour_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour")
    proc = subprocess.run([sys.executable, "-m", "aekit", "tour", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "tour.html", proc.stderr


@pytest.fixture(scope="module")
def tour_report(tour_run):
    return tour_run[0]


def test_the_quick_tour_warns_about_nothing_and_ends_with_its_time(tour_run):
    """Its own models are sized for their data: no warning (undertrained, a code as large as the input...). The
    last line says how long it took here and on an idle machine (Budget.idle_seconds, measured)."""
    path, stderr = tour_run
    lines = stderr.strip().splitlines()
    assert [line for line in lines if not re.match(r"\[ *[0-9.]+ s\] \d+\. ", line)] == lines[-1:], stderr
    assert re.fullmatch(r"tour done in \d+ s \(\d+ s of CPU, \d+ torch threads?, load average [0-9.]+\); "
                        r"on an idle machine it takes \d+ s", lines[-1]), lines[-1]
    html = path.read_text()
    assert lines[-1] in html  # the report's footer says the same
    # The compression section measures real codec files (aekit.codec) and PNG, not a quantisation of its own.
    assert "range-coded" in html and "PNG (lossless, 8-bit pixels)" in html


def test_tour_report_has_all_sixteen_sections_and_tables(tour_report):
    html = tour_report.read_text()
    titles = re.findall(r"<h2>(\d+)\. ", html)
    assert titles == [str(i) for i in range(1, 17)]
    assert html.count("<table>") >= 16 and html.count('src="data:image/png;base64,') >= 21
    assert "http://" not in html and "https://" not in html  # readable offline: nothing to fetch
    for phrase in ("PCA versus the linear autoencoder", "Factor analysis", "The circle", "The spiral",
                   "Sparse autoencoder", "Denoising", "Super-resolution", "Contractive", "Stacked",
                   "Variational autoencoder", "A ring from a Gaussian", "Ones and eights", "Generation",
                   "Anomaly detection", "Compression"):
        assert phrase in html


def test_tour_report_renders_in_headless_chromium(tour_report):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (./setup.sh --with-browser installs it as root)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(tour_report.as_uri())
        page.wait_for_load_state("load")
        widths = page.evaluate("Array.from(document.images).map(img => img.complete ? img.naturalWidth : 0)")
        toc = page.evaluate("document.querySelectorAll('nav li').length")
        page.screenshot(path=str(ARTIFACTS / "tour-quick.png"), full_page=True)
        browser.close()
    assert len(widths) >= 21 and all(w > 0 for w in widths), widths
    assert toc == 16
    assert errors == []
    assert (ARTIFACTS / "tour-quick.png").stat().st_size > 10_000


def test_the_closing_line_names_the_idle_time_only_where_it_was_measured():
    from aekit.tour import Budget, time_taken

    assert time_taken(98.2, 76.4, quick=True).endswith(f"on an idle machine it takes {Budget.for_mode(True).idle_seconds} s")
    assert time_taken(98.2, 76.4, quick=True).startswith("tour done in 98 s (76 s of CPU, ")
    assert "idle" not in time_taken(300, 250, quick=False)  # the default tour's idle time is not measured
