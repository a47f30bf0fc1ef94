"""Separation metrics for detector validation: ROC AUC (with a bootstrap interval) and TPR at a fixed FPR."""
from __future__ import annotations

import math

import numpy as np

from membench.core.stats import wilson_interval


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score_pos > score_neg) + 0.5 P(tie): the ROC AUC (higher = positive), as scipy's
    Mann-Whitney U over n_pos * n_neg."""
    from scipy.stats import mannwhitneyu

    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(mannwhitneyu(pos, neg, method="asymptotic").statistic / (len(pos) * len(neg)))


def auc_bootstrap_ci(pos: np.ndarray, neg: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the AUC over stratified resamples of positives and negatives."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        vals[b] = roc_auc(rng.choice(pos, len(pos)), rng.choice(neg, len(neg)))
    a = (1 - confidence) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float = 0.01) -> dict[str, float]:
    """TPR of the strictest threshold whose false-positive rate on ``neg`` is at most ``fpr``.

    A sample is positive when its score is strictly above the threshold; the threshold is
    the (floor(fpr * n_neg) + 1)-th largest negative score, so at most floor(fpr * n_neg)
    negatives pass. With fewer than 1/fpr negatives that means none may pass.
    """
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        nan = float("nan")
        return {"tpr": nan, "tpr_ci_low": nan, "tpr_ci_high": nan, "threshold": nan, "fpr_actual": nan}
    allowed = int(math.floor(fpr * len(neg) + 1e-9))
    thr = float(np.sort(neg)[::-1][allowed]) if allowed < len(neg) else -np.inf
    k = int((pos > thr).sum())
    lo, hi = wilson_interval(k, len(pos))
    return {"tpr": k / len(pos), "tpr_ci_low": lo, "tpr_ci_high": hi, "threshold": thr,
            "fpr_actual": float((neg > thr).mean())}
