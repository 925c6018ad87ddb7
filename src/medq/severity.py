"""Severity levels, one vocabulary for the engine's records, the finding heads and the reports."""

SEVERITIES = ("none", "mild", "moderate", "severe")
"""Severity levels, mildest first; the finding heads' severity predicts P(level > k) for
k = 0 … K−2 of them (CORAL)."""
