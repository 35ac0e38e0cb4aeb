"""Stage 4: verdicts -> parity.md, parity.html, parity.json, parity.csv and plots."""

from harness.report.content import shown_epochs, write_report

__all__ = ["shown_epochs", "write_report"]
