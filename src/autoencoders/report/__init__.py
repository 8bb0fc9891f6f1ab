"""Figures (matplotlib, rendered to embedded PNG) and self-contained HTML pages."""

from .html import Page, Section, table
from .run import write_report

__all__ = ["Page", "Section", "table", "write_report"]
