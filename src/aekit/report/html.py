"""A self-contained HTML page: images embedded as data URIs, a table of contents, no scripts."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from aekit.runs.storage import write_text

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } nav ol { columns: 2; } section { margin-top: 2.2em; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
.meta { color: #666; font-size: 0.9em; }
"""


def table(rows: list[list], header: list[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Section:
    title: str
    text: str = ""  # one short paragraph: what the experiment shows
    figures: list[tuple[str, bytes]] = field(default_factory=list)  # (alt text, PNG bytes)
    tables: list[str] = field(default_factory=list)  # HTML from table()
    seconds: float | None = None

    def html(self, anchor: str) -> str:
        parts = [f'<section id="{anchor}"><h2>{html.escape(self.title)}</h2>']
        if self.text:
            parts.append(f"<p>{html.escape(self.text)}</p>")
        parts += self.tables
        for alt, png in self.figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        if self.seconds is not None:
            parts.append(f'<p class="meta">{self.seconds:.1f} s</p>')
        parts.append("</section>")
        return "\n".join(parts)


@dataclass
class Page:
    title: str
    intro: str = ""
    sections: list[Section] = field(default_factory=list)
    footer: str = ""

    def render(self) -> str:
        anchors = [f"s{i + 1}" for i in range(len(self.sections))]
        toc = "".join(f'<li><a href="#{a}">{html.escape(s.title)}</a></li>' for a, s in zip(anchors, self.sections))
        body = "\n".join(s.html(a) for a, s in zip(anchors, self.sections))
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
                f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
                f"<p>{html.escape(self.intro)}</p><nav><h2>Contents</h2><ol>{toc}</ol></nav>{body}"
                f'<footer class="meta"><pre>{html.escape(self.footer)}</pre></footer></body></html>\n')

    def write(self, path) -> Path:
        path = Path(path)
        write_text(path, self.render())
        return path
