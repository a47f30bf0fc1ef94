"""Features -> statistics -> metrics, with torch-fidelity's own metric functions.

* FID: Frechet distance between Gaussians fitted to the two feature sets
  (``fid_features_to_statistics`` + ``fid_statistics_to_metric``).
* KID: unbiased MMD^2 with the cubic polynomial kernel, mean and std over random subsets
  (``kid_features_to_metric``); the subset size is min(kid_subset_size, n_generated, n_reference).
* Precision / recall (Kynkaenniemi et al. 2019, ``prc_features_to_metric``): the fraction of
  generated samples inside the real k-NN manifold, and of real samples inside the generated
  one. Both are fractions, so they carry 95% Wilson intervals (over samples, holding the
  k-NN balls fixed).

Minimum counts (per set), so that no metric is silently degenerate:
FID needs more images than feature dimensions (a full-rank covariance is possible only then),
KID needs 2 (the unbiased estimator uses pairs), precision/recall need more than k.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.core.stats import wilson_interval

METRICS = ("fid", "kid", "prc")


@dataclass
class MetricConfig:
    metrics: tuple[str, ...] = METRICS
    kid_subsets: int = 100  # torch-fidelity's default
    kid_subset_size: int = 1000  # torch-fidelity's default; shrunk to the smaller set
    prc_neighborhood: int = 3  # k of the k-NN balls (torch-fidelity's and the paper's default)
    seed: int = 2020  # torch-fidelity's rng_seed (KID subsets)

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)
        bad = set(self.metrics) - set(METRICS)
        if bad or not self.metrics:
            raise MembenchError(f"unknown quality metric(s) {sorted(bad) or '[]'}; known: {', '.join(METRICS)}")
        for name in ("kid_subsets", "kid_subset_size", "prc_neighborhood"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise MembenchError(f"{name} must be a positive integer, got {v!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metrics": list(self.metrics)}


def min_count(metric: str, dim: int, cfg: MetricConfig) -> int:
    return {"fid": dim + 1, "kid": 2, "prc": cfg.prc_neighborhood + 1}[metric]


def _why(metric: str) -> str:
    return {"fid": "one more than the feature dimensions, for a full-rank covariance",
            "kid": "pairs for the unbiased estimator", "prc": "more than the k-NN neighbourhood size k"}[metric]


def count_problem(metric: str, counts: dict[str, int], dim: int, cfg: MetricConfig) -> str | None:
    """A one-line reason when a set is too small for ``metric``, else None."""
    need = min_count(metric, dim, cfg)
    short = [f"{name} has {n}" for name, n in counts.items() if n < need]
    if not short:
        return None
    label = {"fid": "FID", "kid": "KID", "prc": "precision/recall"}[metric]
    return f"{label} needs at least {need} images per set ({_why(metric)}); {' and '.join(short)}"


def _tensor(a: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def fid(gen: np.ndarray, ref: np.ndarray) -> float:
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    s1, s2 = fid_features_to_statistics(_tensor(gen)), fid_features_to_statistics(_tensor(ref))
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def kid(gen: np.ndarray, ref: np.ndarray, cfg: MetricConfig) -> tuple[float, float, int]:
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    size = min(cfg.kid_subset_size, len(gen), len(ref))
    out = kid_features_to_metric(_tensor(gen), _tensor(ref), kid_subsets=cfg.kid_subsets, kid_subset_size=size,
                                 rng_seed=cfg.seed, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD]), size


def precision_recall(gen: np.ndarray, ref: np.ndarray, k: int = 3) -> tuple[float, float]:
    """torch-fidelity's precision/recall (features_1 = generated, features_2 = real)."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    big = len(gen) * len(ref) > 25_000_000  # the streaming variant above ~100 MB of distances
    out = prc_features_to_metric(_tensor(gen), _tensor(ref), prc_neighborhood=k, prc_batch_size=10000,
                                 save_cpu_ram=big, verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def _fraction(p: float, n: int) -> dict[str, Any]:
    k = int(round(p * n))
    lo, hi = wilson_interval(k, n)
    return {"value": p, "count": k, "n": n, "ci_low": lo, "ci_high": hi}


def quality_metrics(gen: np.ndarray, ref: np.ndarray, cfg: MetricConfig | None = None, strict: bool = True,
                    names: tuple[str, str] = ("generated", "reference")) -> dict[str, Any]:
    """All configured metrics of generated features ``gen`` against reference features ``ref``.

    ``strict``: a set too small for a metric raises MembenchError; otherwise the metric is
    NaN and the reason is listed under ``notes``.
    """
    cfg = cfg or MetricConfig()
    if gen.ndim != 2 or ref.ndim != 2 or gen.shape[1] != ref.shape[1]:
        raise MembenchError(f"feature shapes differ: {gen.shape} vs {ref.shape}")
    dim = gen.shape[1]
    counts = {names[0]: len(gen), names[1]: len(ref)}
    nan = float("nan")
    out: dict[str, Any] = {"n_generated": len(gen), "n_reference": len(ref), "notes": []}
    for metric in cfg.metrics:
        problem = count_problem(metric, counts, dim, cfg)
        if problem:
            if strict:
                raise MembenchError(problem)
            out["notes"].append(problem)
        if metric == "fid":
            out["fid"] = nan if problem else fid(gen, ref)
        elif metric == "kid":
            mean, std, size = (nan, nan, 0) if problem else kid(gen, ref, cfg)
            out.update({"kid": mean, "kid_std": std, "kid_subset_size": size, "kid_subsets": cfg.kid_subsets})
        else:
            if problem:
                out.update({"precision": {"value": nan}, "recall": {"value": nan}})
            else:
                p, r = precision_recall(gen, ref, cfg.prc_neighborhood)
                out.update({"precision": _fraction(p, len(gen)), "recall": _fraction(r, len(ref))})
            out["prc_neighborhood"] = cfg.prc_neighborhood
    return out
