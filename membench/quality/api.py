"""``membench quality``: quality of samples made elsewhere, as a table (one row per reference)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from membench.core.errors import MembenchError
from membench.quality.evaluate import REFERENCES, evaluate
from membench.quality.metrics import METRICS, MetricConfig


def measure(samples: str | Path | np.ndarray, train: str, extractor: str = "digits",
            references: str | Sequence[str] = REFERENCES, metrics: str | Sequence[str] = METRICS,
            kid_subsets: int = 100, device: str = "auto", cache_dir: str | Path | None = None
            ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Quality of ``samples`` (a ``.npz``/``.npy``/image folder or an array) against ``train``'s
    held-out and/or training images. Strict: a set too small for a metric is an error."""
    from membench.data import load_dataset
    from membench.data.datasets import to_model_range
    from membench.models.samples import resolve_device

    if isinstance(references, str):
        references = [r.strip() for r in references.split(",") if r.strip()]
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    cfg = MetricConfig(metrics=tuple(metrics), kid_subsets=kid_subsets)
    if isinstance(samples, np.ndarray):
        images = to_model_range(samples, "samples")
    else:
        if not Path(samples).exists():
            raise MembenchError(f"samples not found: {samples}")
        images = np.asarray(load_dataset(str(samples)).images)
    ds = load_dataset(train)
    rec = evaluate(images, ds, extractor, cfg, references=references, device=resolve_device(device),
                   cache_dir=cache_dir, strict=True)
    rows = []
    for ref, m in rec["metrics"].items():
        row: dict[str, Any] = {"reference": ref, "reference_data": f"{ds.spec} {ref}", "n_reference": m["n_reference"],
                               "n_samples": m["n_generated"], "extractor": rec["extractor"]["name"]}
        for key in ("fid", "kid", "kid_std"):
            if key in m:
                row[key] = m[key]
        for frac in ("precision", "recall"):
            if frac in m:
                row.update({frac: m[frac]["value"], f"{frac}_ci_low": m[frac]["ci_low"],
                            f"{frac}_ci_high": m[frac]["ci_high"]})
        rows.append(row)
    return pd.DataFrame(rows), rec
