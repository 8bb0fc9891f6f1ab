"""The docs as a site: `mkdocs build --strict` passes, every built page opens in headless Chromium with a
heading, working internal links and anchors, loaded images and nothing fetched from outside; the README
is a short front page whose relative links all resolve."""

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TWO_COMMANDS = [
    "./setup.sh && .venv/bin/aekit tour ",
    "./setup.sh --with-browser && .venv/bin/python -m pytest -q -n auto ",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_mkdocs_build_is_strict_and_offline(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 20
    for page in pages:
        html = page.read_text()
        # Nothing a browser would fetch from outside: scripts, styles, images, fonts.
        assets = re.findall(r'<(?:script|img|link|source|iframe)\b[^>]*?(?:src|href)="(https?://[^"]+)"', html)
        assert not [a for a in assets if "rel=\"canonical\"" not in a], (page, assets)
        assert "fonts.googleapis" not in html and "cdn." not in html, page


def test_every_page_renders_with_working_links_and_images(site):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (./setup.sh --with-browser installs it as root)")
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")
    ids, links, problems, outside = {}, {}, [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:"))
                    else None)
            for name in pages:
                response = page.goto(base + name)
                page.wait_for_load_state("load")
                assert response is not None and response.status == 200, name
                info = page.evaluate("""() => ({
                    h1: document.querySelectorAll('article h1, .md-content h1').length,
                    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
                    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
                    images: Array.from(document.images).map(i => [i.src, i.complete ? i.naturalWidth : 0]),
                })""")
                if info["h1"] < 1:
                    problems.append(f"{name}: no h1")
                problems += [f"{name}: image {src} did not load" for src, width in info["images"] if width == 0]
                ids[name] = set(info["ids"])
                links[name] = [u for u in info["links"] if u.startswith(base)]
            browser.close()
    finally:
        server.shutdown()
    for name, urls in links.items():
        for url in urls:
            target, fragment = urldefrag(url)
            path = unquote(urlparse(target).path).lstrip("/") or "index.html"
            if path.endswith("/"):
                path += "index.html"
            if not (site / path).is_file():
                problems.append(f"{name}: link to missing {path}")
            elif fragment and path.endswith(".html") and unquote(fragment) not in ids.get(path, set()):
                problems.append(f"{name}: link to missing anchor {path}#{fragment}")
    assert problems == [], "\n".join(problems)
    assert outside == [], outside


def test_readme_is_a_front_page_that_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 200, len(lines)
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert text.index("```bash") < text.index("\n## ")  # the commands come before any section
    assert [line[:len(cmd)] for line, cmd in zip(first_block, TWO_COMMANDS)] == TWO_COMMANDS
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (ROOT / target).exists(), f"README.md links to missing {target}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
