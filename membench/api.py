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
    """A positive integer (the one rule: ``membench.core.options.check_count``)."""
    from membench.core.options import check_count as check

    return check(n, what)


def model_subject(spec: ModelSpec, nfe: int | None = None, checkpoint_hash: str | None = None) -> dict[str, Any]:
    """A registered model as the subject of a record."""
    return {"name": spec.name, "role": spec.role, "teacher": spec.teacher, "method": spec.method,
            "sampler": spec.sampler, "nfe": nfe, "dataset": spec.dataset, "checkpoint_hash": checkpoint_hash}


def model_image_set(spec: ModelSpec, train: Dataset, n: int, seed: int, device: str,
                    cache_dir: Path | None, progress: bool = False, executor: Any = None) -> ImageSet:
    """The samples of a registered model as an image set, generated (or read from the cache) only when needed."""
    from membench.measure import ImageSet
    from membench.models.samples import get_samples, spec_sample_key
    from membench.models.specs import make_sampler

    ckpt, key = spec_sample_key(spec, seed, n)
    nfe = getattr(make_sampler(spec.sampler), "nfe", None)

    def load() -> tuple[Any, Any]:
        ss = get_samples(spec, n, seed, device, cache_dir, progress, executor=executor)
        iset.class_labels = ss.labels  # class-conditional models: one label per sample, stored in the records
        return ss.images, ss.noise_index

    samples = {"key": key, "n": n, "seed": seed, "source": "model"}
    iset = ImageSet(model_subject(spec, int(nfe) if nfe is not None else None, ckpt), samples, train, load,
                    model=spec)
    return iset


def run(models: str | Sequence[str] = "teacher", detectors: str | Sequence[str] = "l2ratio", n_samples: int = 1000,
        seed: int = 0, device: str = "auto", results_dir: str | Path | None = None,
        cache_dir: str | Path | None = None, progress: bool = False, force: bool = False, quality: bool = True,
        quality_extractor: str = "digits", executor: Any = "local", address: str | None = None) -> pd.DataFrame:
    """Evaluate every (model, detector) pair; returns this run's rows of the leaderboard.

    Samples ``n_samples`` images per model (noise ``i`` of ``seed`` for sample ``i``, the same
    for every model), runs each detector, and with ``quality`` measures each sample set's FID,
    KID and precision/recall against the held-out and the training images (features of
    ``quality_extractor``). Records go to ``results_dir`` (default: the workspace's
    ``results/``); pairs already there are reused unless ``force``. ``models``/``detectors``:
    a comma-separated string, a list, or ``"all"``. The rows' ``cached`` column says which
    were read back from the store instead of computed. ``executor``: where samples are made,
    ``"local"`` (this process) or ``"ray"`` (a Ray cluster at ``address``; ``membench.executors``);
    detection and quality run here either way, once per model.
    """
    from membench.core.registry import names
    from membench.core.workspace import resolve_results
    from membench.data import load_dataset
    from membench.detectors.base import DetectorContext
    from membench.measure import measure
    from membench.models.samples import resolve_device
    from membench.models.specs import resolve_model
    from membench.store import leaderboard

    from membench.core.options import check_seed
    from membench.core.paths import check_output_dir
    from membench.models.preflight import check_model

    # Everything is checked before the first lock, cache or result file (docs/guide.md, "Errors and guarantees").
    check_count(n_samples)
    check_seed(seed)
    specs = [resolve_model(m) for m in expand_names(models, names("models"))]
    dets, everything = resolve_detectors(detectors)
    if quality:
        _check_quality_extractor(quality_extractor)
    from membench.executors import make_executor

    sample_device = device if executor != "local" else None  # a Ray cluster may have GPUs this machine lacks
    device = resolve_device(device)
    executor = make_executor(executor, address)  # connects: a bad address fails before any work
    results_dir = check_output_dir(resolve_results(results_dir))
    ctx = DetectorContext(device=device, cache_dir=Path(cache_dir) if cache_dir else None, progress=progress)
    trains: dict[str, Dataset] = {}
    sets = []
    for spec in specs:
        if spec.dataset not in trains:
            trains[spec.dataset] = load_dataset(spec.dataset)
        check_model(spec, trains[spec.dataset].shape, n_samples)
        sets.append(model_image_set(spec, trains[spec.dataset], n_samples, seed, sample_device or device,
                                    ctx.cache_dir, progress, executor))
    result = measure(sets, dets, ctx, quality=quality_extractor if quality else None, results_dir=results_dir,
                     force=force, keep_unavailable=everything)
    board = leaderboard.rebuild(results_dir, extra=result.unavailable)
    keys = {(r.subject["name"], r.test["name"], r.samples["key"]) for r in result.records if r.kind == "detection"}
    mask = [(m, d, k) in keys for m, d, k in zip(board["model"], board["detector"], board["sample_key"])]
    rows = board[mask].reset_index(drop=True)
    cached = {(r.subject["name"], r.test["name"], r.samples["key"]) for r in result.cached if r.kind == "detection"}
    rows["cached"] = [(m, d, k) in cached for m, d, k in zip(rows["model"], rows["detector"], rows["sample_key"])]
    return rows


def _check_quality_extractor(name: str) -> None:
    """Fail on an unknown extractor name before any sampling; missing weights are reported later."""
    from membench.core.errors import UnavailableError
    from membench.features.fidelity import resolve_extractor

    try:
        resolve_extractor(name)
    except UnavailableError:
        pass


def file_image_set(samples: str | Path | np.ndarray, train: Dataset, seed: int = 0,
                   noise_index: str | np.ndarray | None = None, reference: str | None = None) -> ImageSet:
    """Samples made elsewhere (``.npz``/``.npy``/image folder, or an array) as an image set.

    ``noise_index``: which noise made each image (an array, or a ``--noise-index`` spec, see
    ``membench.data.noise_index``); ``reference``: the subject name of the set this one is
    compared with, noise by noise (as a student with its teacher). Each image keeps its name."""
    import numpy as np

    from membench.data.datasets import load_image_file
    from membench.data.noise_index import load_noise_index, sample_names
    from membench.data.validate import to_model_range
    from membench.measure import ImageSet

    if isinstance(samples, np.ndarray):
        images, name, meta = to_model_range(samples, "samples"), "array", {}
    else:
        ds = load_image_file(samples, "samples")
        images, name, meta = np.asarray(ds.images), Path(str(samples)).name, ds.meta
    names = sample_names(samples if name != "array" else "array", meta, len(images))
    if isinstance(noise_index, str):
        noise_index = load_noise_index(noise_index, samples if name != "array" else "array", names)
    elif noise_index is not None:
        from membench.data.noise_index import check_noise_index

        noise_index = check_noise_index(np.asarray(noise_index), len(images), "noise_index")
    subject = {"name": f"samples:{name}", "role": "samples", "dataset": train.spec}
    if reference:
        subject["teacher"] = reference
    return ImageSet.of_images(images, subject, train, seed=seed, noise_index=noise_index, names=names,
                              source=str(samples) if name != "array" else "array")


def detect(samples: str | Path | np.ndarray | Sequence[Any], train: str | Dataset, detectors: str | Sequence[str] = "l2ratio",
           device: str = "auto", progress: bool = False, results_dir: str | Path | None = None,
           cache_dir: str | Path | None = None, noise_index: Any = None) -> tuple[pd.DataFrame, dict[Any, Any]]:
    """Run detectors on samples made elsewhere (``.npz``/``.npy``/image folder or an array).

    Returns (one row per detector, {detector: its record}); each record's ``arrays`` hold the
    per-sample scores, flags, matched training indices, noise indices and image names (``file``).
    ``train`` is a dataset spec or a ``Dataset`` (``membench.data.from_arrays``/``from_torch``).
    With ``results_dir`` the records are stored too (and appear in the leaderboard and report).

    Several sample sets (a list, with ``noise_index`` a list of the same length: arrays or
    ``--noise-index`` specs, see ``membench.data.noise_index``): every set after the first is
    compared with the first noise by noise (``membench.analysis.effect``), and the records are
    keyed ``(set name, detector)``.
    """
    from membench.data import as_dataset
    from membench.detectors.base import DetectorContext
    from membench.measure import measure
    from membench.models.samples import resolve_device
    from membench.store.leaderboard import build
    from membench.core.paths import check_output_dir

    many = isinstance(samples, (list, tuple))
    sets_in = list(samples) if many else [samples]
    nidx = list(noise_index) if isinstance(noise_index, (list, tuple)) else [noise_index] * len(sets_in)
    if len(nidx) != len(sets_in):
        raise MembenchError(f"{len(nidx)} noise indices for {len(sets_in)} sample sets: give one per set, in order")
    if len(sets_in) > 1 and any(x is None for x in nidx):
        raise MembenchError("several sample sets are compared noise by noise: give --noise-index for each")
    dets, everything = resolve_detectors(detectors)
    device = resolve_device(device)  # a bad device or output folder: one line, before any work
    if results_dir is not None:
        results_dir = check_output_dir(results_dir)
    train_ds = as_dataset(train)
    isets = []
    for i, (s, idx) in enumerate(zip(sets_in, nidx)):
        isets.append(file_image_set(s, train_ds, noise_index=idx,
                                    reference=isets[0].subject["name"] if i else None))
    set_names = [iset.subject["name"] for iset in isets]
    if len(set(set_names)) < len(set_names):
        raise MembenchError(f"sample sets need distinct file names to be told apart: {', '.join(set_names)}")
    ctx = DetectorContext(device=device, cache_dir=Path(cache_dir) if cache_dir else None, progress=progress)
    result = measure(isets, dets, ctx, results_dir=results_dir, keep_unavailable=everything)
    if not many:
        return build(result.records), {r.test["name"]: r for r in result.records if r.ok}
    return build(result.records), {(r.subject["name"], r.test["name"]): r for r in result.records if r.ok}


def quality(samples: str | Path | np.ndarray, train: str | Dataset, extractor: str = "digits",
            references: str | Sequence[str] = ("heldout", "train"), metrics: str | Sequence[str] = ("fid", "kid", "prc"),
            kid_subsets: int = 100, device: str = "auto", cache_dir: str | Path | None = None,
            results_dir: str | Path | None = None) -> tuple[pd.DataFrame, Any]:
    """Quality of samples made elsewhere against ``train``'s held-out and/or training images.

    One row per reference (never pooled: quality against the training images rewards
    memorization). Strict: a set too small for a metric is an error. Returns (table, record).
    """
    import pandas as pd

    from membench.core.specs import split_list
    from membench.data import as_dataset
    from membench.detectors.base import DetectorContext
    from membench.measure import QualitySpec, measure
    from membench.models.samples import resolve_device
    from membench.quality.metrics import MetricConfig

    refs = tuple(split_list(references) if isinstance(references, str) else references)
    wanted = tuple(split_list(metrics) if isinstance(metrics, str) else metrics)
    spec = QualitySpec(extractor, MetricConfig(metrics=wanted, kid_subsets=kid_subsets), refs, strict=True)
    from membench.measure import resolve_quality

    train_ds = as_dataset(train)
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
