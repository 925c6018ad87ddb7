"""Severity levels, one vocabulary for the engine's records, the finding heads and the reports;
and the quality grades of a score (no heavy imports: the QC store sorts by them)."""

import math

SEVERITIES = ("none", "mild", "moderate", "severe")
"""Severity levels, mildest first; the finding heads' severity predicts P(level > k) for
k = 0 … K−2 of them (CORAL)."""

GRADES = ((4.5, "excellent"), (3.5, "good"), (2.5, "acceptable"), (1.5, "poor"),
          (-math.inf, "non-diagnostic"))
"""Score thresholds of the grades, best first."""
