"""The library's public entry points: ``run`` (registered models) and ``detect`` (sample files).

Both resolve every name first (an unknown name fails before any heavy work), turn their
inputs into image sets and hand them to the one measurement path (``membench.measure``),
which stores one record per measurement; the leaderboard is then rebuilt from the store.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from membench.core.errors import MembenchError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from membench.data import Dataset
    from membench.measure import ImageSet
    from membench.models.specs import ModelSpec


def expand_names(items: str | Sequence[str], all_names: list[str]) -> list[str]:
    """``"a,b:k=1"`` or a list -> names; ``all`` -> every registered name."""
    from membench.core.specs import split_list

    items = split_list(items) if isinstance(items, str) else list(items)
    if not items:
        raise MembenchError("no names given")
    return all_names if "all" in items else items


def resolve_detectors(detectors: str | Sequence[str]) -> tuple[list[Any], bool]:
    """Detector objects for the names, and whether every registered detector was asked for
    (then one that cannot run here becomes an ``unavailable`` row instead of an error)."""
    from membench.core.registry import names
    from membench.core.specs import split_list
    from membench.detectors.base import make_detector

    from membench.detectors import DETECTORS, OPT_IN_GROUP

    group = DETECTORS.names(tag=OPT_IN_GROUP)  # opt-in (expensive): not in "all", named by the group
    default = [n for n in names("detectors") if n not in group]
    items = split_list(detectors) if isinstance(detectors, str) else list(detectors)
    items = [x for item in items for x in (group if item == OPT_IN_GROUP else [item])]
    wanted = expand_names(items, default)
    if "all" in items:
        wanted += [n for n in items if n != "all" and n not in wanted]
    return [make_detector(d) for d in wanted], "all" in items


def check_count(n: Any, what: str = "--n-samples") -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise MembenchError(f"{what} must be a positive integer, got {n!r}")
    return n


def model_subject(spec: ModelSpec, nfe: int | None = None, checkpoint_hash: str | None = None) -> dict[str, Any]:
    """A registered model as the subject of a record."""
    return {"name": spec.name, "role": spec.role, "teacher": spec.teacher, "method": spec.method,
            "sampler": spec.sampler, "nfe": nfe, "dataset": spec.dataset, "checkpoint_hash": checkpoint_hash}


def model_image_set(spec: ModelSpec, train: Dataset, n: int, seed: int, device: str,
                    cache_dir: Path | None, progress: bool = False) -> ImageSet:
    """The samples of a registered model as an image set, generated (or read from the cache) only when needed."""
    from membench.measure import ImageSet
    from membench.models.checkpoints import checkpoint_hash
    from membench.models.samples import get_samples, sample_key
    from membench.models.specs import make_sampler

    ckpt = checkpoint_hash(spec.checkpoint)
    nfe = getattr(make_sampler(spec.sampler), "nfe", None)

    def load() -> tuple[Any, Any]:
        ss = get_samples(spec, n, seed, device, cache_dir, progress)
        return ss.images, ss.noise_index

    samples = {"key": sample_key(ckpt, spec.sampler, seed, n), "n": n, "seed": seed, "source": "model"}
    return ImageSet(model_subject(spec, int(nfe) if nfe is not None else None, ckpt), samples, train, load,
                    model=spec)


def run(models: str | Sequence[str] = "teacher", detectors: str | Sequence[str] = "l2ratio", n_samples: int = 1000,
        seed: int = 0, device: str = "auto", results_dir: str | Path | None = None,
        cache_dir: str | Path | None = None, progress: bool = False, force: bool = False, quality: bool = True,
        quality_extractor: str = "digits") -> pd.DataFrame:
    """Evaluate every (model, detector) pair; returns this run's rows of the leaderboard.

    Samples ``n_samples`` images per model (noise ``i`` of ``seed`` for sample ``i``, the same
    for every model), runs each detector, and with ``quality`` measures each sample set's FID,
    KID and precision/recall against the held-out and the training images (features of
    ``quality_extractor``). Records go to ``results_dir`` (default: the workspace's
    ``results/``); pairs already there are reused unless ``force``. ``models``/``detectors``:
    a comma-separated string, a list, or ``"all"``.
    """
    from membench.core.registry import names
    from membench.core.workspace import resolve_results
    from membench.data import load_dataset
    from membench.detectors.base import DetectorContext
    from membench.measure import measure
    from membench.models.samples import resolve_device
    from membench.models.specs import resolve_model
    from membench.store import leaderboard

    check_count(n_samples)
    specs = [resolve_model(m) for m in expand_names(models, names("models"))]
    dets, everything = resolve_detectors(detectors)
    if quality:
        _check_quality_extractor(quality_extractor)
    device = resolve_device(device)
    results_dir = resolve_results(results_dir)
    ctx = DetectorContext(device=device, cache_dir=Path(cache_dir) if cache_dir else None, progress=progress)
    trains: dict[str, Dataset] = {}
    sets = []
    for spec in specs:
        if spec.dataset not in trains:
            trains[spec.dataset] = load_dataset(spec.dataset)
        sets.append(model_image_set(spec, trains[spec.dataset], n_samples, seed, device, ctx.cache_dir, progress))
    result = measure(sets, dets, ctx, quality=quality_extractor if quality else None, results_dir=results_dir,
                     force=force, keep_unavailable=everything)
    board = leaderboard.rebuild(results_dir, extra=result.unavailable)
    keys = {(r.subject["name"], r.test["name"], r.samples["key"]) for r in result.records if r.kind == "detection"}
    mask = [(m, d, k) in keys for m, d, k in zip(board["model"], board["detector"], board["sample_key"])]
    return board[mask].reset_index(drop=True)


def _check_quality_extractor(name: str) -> None:
    """Fail on an unknown extractor name before any sampling; missing weights are reported later."""
    from membench.core.errors import UnavailableError
    from membench.features.fidelity import resolve_extractor

    try:
        resolve_extractor(name)
    except UnavailableError:
        pass


def file_image_set(samples: str | Path | np.ndarray, train: Dataset, seed: int = 0) -> ImageSet:
    """Samples made elsewhere (``.npz``/``.npy``/image folder, or an array) as an image set."""
    import numpy as np

    from membench.data import load_dataset
    from membench.data.datasets import to_model_range
    from membench.measure import ImageSet

    if isinstance(samples, np.ndarray):
        images, name = to_model_range(samples, "samples"), "array"
    else:
        if not Path(samples).exists():
            raise MembenchError(f"samples not found: {samples}")
        images, name = np.asarray(load_dataset(str(samples)).images), Path(samples).name
    subject = {"name": f"samples:{name}", "role": "samples", "dataset": train.spec}
    return ImageSet.of_images(images, subject, train, seed=seed, source=str(samples) if name != "array" else "array")


def detect(samples: str | Path | np.ndarray, train: str, detectors: str | Sequence[str] = "l2ratio",
           device: str = "auto", progress: bool = False, results_dir: str | Path | None = None,
           cache_dir: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run detectors on samples made elsewhere (``.npz``/``.npy``/image folder or an array).

    Returns (one row per detector, {detector: its record}); each record's ``arrays`` hold the
    per-sample scores, flags and matched training indices. With ``results_dir`` the records
    are stored too (and appear in the leaderboard and report).
    """
    from membench.data import load_dataset
    from membench.detectors.base import DetectorContext
    from membench.measure import measure
    from membench.models.samples import resolve_device
    from membench.store.leaderboard import build

    train_ds = load_dataset(train)
    dets, everything = resolve_detectors(detectors)
    iset = file_image_set(samples, train_ds)
    ctx = DetectorContext(device=resolve_device(device), cache_dir=Path(cache_dir) if cache_dir else None,
                          progress=progress)
    result = measure([iset], dets, ctx, results_dir=results_dir, keep_unavailable=everything)
    return build(result.records), {r.test["name"]: r for r in result.records if r.ok}


def quality(samples: str | Path | np.ndarray, train: str, extractor: str = "digits",
            references: str | Sequence[str] = ("heldout", "train"), metrics: str | Sequence[str] = ("fid", "kid", "prc"),
            kid_subsets: int = 100, device: str = "auto", cache_dir: str | Path | None = None,
            results_dir: str | Path | None = None) -> tuple[pd.DataFrame, Any]:
    """Quality of samples made elsewhere against ``train``'s held-out and/or training images.

    One row per reference (never pooled: quality against the training images rewards
    memorization). Strict: a set too small for a metric is an error. Returns (table, record).
    """
    import pandas as pd

    from membench.core.specs import split_list
    from membench.data import load_dataset
    from membench.detectors.base import DetectorContext
    from membench.measure import QualitySpec, measure
    from membench.models.samples import resolve_device
    from membench.quality.metrics import MetricConfig

    refs = tuple(split_list(references) if isinstance(references, str) else references)
    wanted = tuple(split_list(metrics) if isinstance(metrics, str) else metrics)
    spec = QualitySpec(extractor, MetricConfig(metrics=wanted, kid_subsets=kid_subsets), refs, strict=True)
    from membench.measure import resolve_quality

    train_ds = load_dataset(train)
    resolve_quality(extractor, train_ds)  # strict: missing weights or unfit images are the one-line error
    iset = file_image_set(samples, train_ds)
    ctx = DetectorContext(device=resolve_device(device), cache_dir=Path(cache_dir) if cache_dir else None)
    rec = measure([iset], [], ctx, quality=spec, results_dir=results_dir).records[0]
    if not rec.ok:
        raise MembenchError(rec.reason)
    rows = []
    for ref in refs:
        row: dict[str, Any] = {"reference": ref, "reference_data": f"{train_ds.spec} {ref}",
                               "n_reference": rec.info["references"][ref]["n"], "n_samples": rec.n,
                               "extractor": rec.test["extractor"]["name"]}
        for name in ("fid", "kid", "precision", "recall"):
            metric = rec.metrics.get(f"{name}_{ref}")
            if metric is not None:
                row[name] = metric.value
                if metric.interval is not None:
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = metric.interval
            if name == "kid" and f"kid_{ref}_std" in rec.stats:
                row["kid_std"] = rec.stats[f"kid_{ref}_std"]
        rows.append(row)
    return pd.DataFrame(rows), rec
