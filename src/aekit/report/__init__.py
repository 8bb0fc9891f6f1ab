"""Figures (matplotlib, rendered to embedded PNG) and self-contained HTML pages."""

from aekit.report.html import Page, Section, table
from aekit.report.run import write_report

__all__ = ["Page", "Section", "table", "write_report"]
