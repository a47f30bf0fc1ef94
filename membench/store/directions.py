"""Which direction is better, for every leaderboard column the report and the check know.

Memorization: lower is better. Quality columns (added by the quality metrics) are
optional and recognised by their prefix: ``fid_heldout``, ``kid_train``, ``precision_heldout``...
"""
from __future__ import annotations

from typing import Iterable

MEMORIZATION = "memorized"
QUALITY_PREFIXES: dict[str, str] = {
    "fid": "lower", "kid": "lower", "precision": "higher", "recall": "higher",
    "density": "higher", "coverage": "higher", "isc": "higher", "inception_score": "higher",
}
_CI_SUFFIXES = ("_ci_low", "_ci_high", "_std", "_stderr")


def direction(column: str) -> str | None:
    """'lower', 'higher' or None (not a scored column)."""
    if column == MEMORIZATION:
        return "lower"
    if column.endswith(_CI_SUFFIXES):
        return None
    for prefix, d in QUALITY_PREFIXES.items():
        if column == prefix or column.startswith(prefix + "_"):
            return d
    return None


def quality_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c != MEMORIZATION and direction(c) is not None]


def arrow(column: str) -> str:
    """'↓' when lower is better, '↑' when higher is, '' otherwise."""
    return {"lower": "↓", "higher": "↑"}.get(direction(column) or "", "")
