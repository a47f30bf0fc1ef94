"""The one measurement path: image sets x detectors (+ quality) -> records.

``run``, ``detect``, ``validate``, ``check``, every study and the random-feature study call
:func:`measure`. It owns the rules every flow shares:

* a detector that cannot run here (missing weights, no model for a model-based detector)
  raises, unless the caller asked for every detector (``keep_unavailable``): then it is an
  ``unavailable`` record with the reason, reported and never stored (retried next time);
* with a store (``results_dir``), a measurement whose record exists is read back instead of
  recomputed (``force`` recomputes), and concurrent runs never compute the same one twice
  (one lock per record; see ``core.locks.claim_each``);
* the memorized fraction comes with its 95% Wilson interval over samples, the score median
  with its direction, the per-sample arrays with the noise index.

Images are loaded lazily, once per image set, and only when something must be computed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from membench.core.errors import UnavailableError
from membench.store.records import Metric, Record

if TYPE_CHECKING:
    import numpy as np

    from membench.data import Dataset
    from membench.detectors.base import Detector, DetectorContext, DetectorOutput

QUALITY_TEST = "quality"


@dataclass
class ImageSet:
    """Images to measure, the data they are compared with, and where they came from.

    ``subject``: who made them (a model's record: name, role, teacher, method, sampler, nfe,
    dataset, checkpoint_hash; or ``{"name": ..., "role": "samples"}`` for a file).
    ``samples``: ``{"key": content key, "n", "seed", "source"}``. ``load`` returns
    ``(images, noise_index)`` and is called at most once, only when needed.
    """

    subject: dict[str, Any]
    samples: dict[str, Any]
    train: "Dataset"
    load: Callable[[], tuple["np.ndarray", "np.ndarray"]]
    model: Any = None  # the ModelSpec, for model-based detectors (sharpness)
    labels: "np.ndarray | None" = None  # ground truth (validation tasks): True = memorized
    class_labels: "np.ndarray | None" = None  # class-conditional samples: each one's class (set on load)
    names: "np.ndarray | None" = None  # each image's name (sample files: the file name), kept per sample
    image_shape: tuple[int, ...] | None = None  # (C, H, W) when known before loading (images in memory)
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)

    @classmethod
    def of_images(cls, images: "np.ndarray", subject: dict[str, Any], train: "Dataset", seed: int = 0,
                  noise_index: "np.ndarray | None" = None, model: Any = None, source: str = "memory",
                  labels: "np.ndarray | None" = None, names: "np.ndarray | None" = None) -> "ImageSet":
        """An image set already in memory, keyed by its content (and its noise index, when given)."""
        import numpy as np

        from membench.core.io import array_digest

        key = array_digest(images)
        idx = np.arange(len(images), dtype=np.int64) if noise_index is None else np.asarray(noise_index)
        if not np.array_equal(idx, np.arange(len(images))):
            key = f"{key}-{array_digest(idx)[:12]}"  # the same images under another pairing are another set
        samples = {"key": key, "n": int(len(images)), "seed": int(seed), "source": source}
        return cls(subject, samples, train, lambda: (images, idx), model=model, labels=labels, names=names,
                   image_shape=tuple(int(x) for x in images.shape[1:]))

    def images(self) -> tuple["np.ndarray", "np.ndarray"]:
        if self._loaded is None:
            self._loaded = self.load()
        return self._loaded

    def release(self) -> None:
        self._loaded = None


def detector_test(det: "Detector") -> dict[str, Any]:
    """How a detector is named in records: its display name, base name, configuration, direction."""
    return {"name": getattr(det, "display_name", det.registry_name), "base": det.registry_name,
            "config": det.config(), "score": det.score_name, "higher_is_memorized": bool(det.higher_is_memorized)}


def _stamp(rec: Record) -> Record:
    """When and by which membench version ``rec`` is measured."""
    from membench import __version__

    rec.created, rec.membench = time.strftime("%Y-%m-%dT%H:%M:%S%z"), __version__
    return rec


def _null_of(subject: dict[str, Any]) -> dict[str, Any] | None:
    """A student's or control's reference is its teacher (a sample file's: the reference set),
    compared noise by noise."""
    if subject.get("role") in ("student", "control", "samples") and subject.get("teacher"):
        return {"model": subject["teacher"], "relation": "teacher, paired by noise"}
    return None


def plan_detection(iset: ImageSet, det: "Detector") -> Record:
    """The record a detection will fill (what is measured, not yet its outcome)."""
    return Record(kind="detection", subject=iset.subject, samples=iset.samples,
                  data={"spec": iset.train.spec, "fingerprint": iset.train.fingerprint()},
                  test=detector_test(det), null=_null_of(iset.subject))


def memorization_metrics(out: "DetectorOutput", higher_is_memorized: bool) -> tuple[dict[str, Metric], dict[str, Any]]:
    """The memorized fraction (95% Wilson interval over samples) and the score's median."""
    import numpy as np

    from membench.core.stats import wilson_interval

    n = len(out.flags)
    k = int(np.count_nonzero(out.flags))
    lo, hi = wilson_interval(k, n)
    metrics = {"memorized": Metric(k / n, (lo, hi), "wilson95", "samples", higher_is_memorized=True),
               "score_median": Metric(float(np.median(out.scores)), higher_is_memorized=higher_is_memorized)}
    return metrics, {"n_flagged": k, "n": n, "score_mean": float(np.mean(out.scores))}


def run_detector(iset: ImageSet, det: "Detector", ctx: "DetectorContext", keep_unavailable: bool = False) -> Record:
    """One detector on one image set -> a filled record (or an unavailable one, see module doc)."""
    rec = _stamp(plan_detection(iset, det))
    images, noise_index = iset.images()
    ctx.model = iset.model
    ctx.labels = iset.class_labels
    t0 = time.time()
    try:
        out = det.detect(images, iset.train, ctx)
    except UnavailableError as exc:
        if not keep_unavailable:
            raise
        rec.status, rec.reason = "unavailable", str(exc)
        return rec
    from membench.detectors.calibration import calibrate

    out, control = calibrate(det, out, iset.train, ctx)  # held-out false-flag rate; fpr= thresholds
    rec.metrics, rec.stats = memorization_metrics(out, det.higher_is_memorized)
    rec.metrics.update(getattr(out, "metrics", None) or {})  # model- and set-level tests' own metrics
    rec.stats["detect_seconds"] = round(time.time() - t0, 3)
    rec.info = dict(out.info)
    if control is not None:
        rec.metrics["heldout_flagged"] = Metric(control["flagged"], tuple(control["interval"]), "wilson95",
                                                "held-out images", higher_is_better=False)
        rec.null = {**(rec.null or {}), "heldout": {k: v for k, v in control.items() if k != "scores"}}
        rec.info["calibration"] = {"control": f"held-out images of {iset.train.spec}, never trained on",
                                   "threshold": control["threshold"], "fpr_target": control["fpr_target"]}
    # a model-level test scores images of its own (members, non-members), not the samples
    rec.arrays = {"noise_index": noise_index if len(noise_index) == len(out.scores) else out.nearest, "scores": out.scores, "flags": out.flags, "nearest": out.nearest,
                  **{f"extra_{k}": v for k, v in out.extras.items()}}
    if iset.labels is not None:
        rec.arrays["labels"] = iset.labels
    if iset.class_labels is not None:
        rec.arrays["class_labels"] = iset.class_labels
    if iset.names is not None:
        rec.arrays["sample_name"] = iset.names  # not "file": np.savez's own argument
    return rec


# ------------------------------------------------------------------ quality


def plan_quality(iset: ImageSet, extractor: Any, cfg: Any, references: Sequence[str] = ("heldout", "train")
                 ) -> Record:
    return Record(kind="quality", subject=iset.subject, samples=iset.samples,
                  data={"spec": iset.train.spec, "fingerprint": iset.train.fingerprint()},
                  test={"name": QUALITY_TEST, "base": QUALITY_TEST, "extractor": extractor.identity(),
                        "config": {**cfg.to_dict(), "references": list(references)}})


def quality_metrics_of(summary: dict[str, Any]) -> dict[str, Metric]:
    """Record metrics from the flat quality summary (``fid_heldout``, ``precision_train``, ...)."""
    import math

    from membench.store.directions import direction

    out: dict[str, Metric] = {}
    for col, v in summary.items():
        d = direction(col)
        if d is None or not isinstance(v, (int, float)) or math.isnan(v):
            continue
        lo, hi = summary.get(f"{col}_ci_low"), summary.get(f"{col}_ci_high")
        has_ci = lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi))
        # precision counts samples inside the reference manifold; recall counts reference images inside the samples'
        over = ("reference images" if col.startswith("recall") else "samples") if has_ci else ""
        out[col] = Metric(float(v), (float(lo), float(hi)) if has_ci else None, "wilson95" if has_ci else "", over,
                          higher_is_better=(d == "higher"))
    return out


def resolve_quality(extractor: str, train: "Dataset") -> Any:
    """The quality feature extractor for ``train``'s images; UnavailableError when it cannot take them."""
    from membench.features.fidelity import resolve_extractor

    ext = resolve_extractor(extractor)
    why = ext.problem(train.shape)  # e.g. the digits classifier on 32x32 RGB data: refused, says what to use
    if why:
        raise UnavailableError(why)
    return ext


@dataclass
class QualitySpec:
    """Which quality metrics to measure: the feature extractor, the metric configuration, the
    references (``heldout``: unseen images, the fair one; ``train``: rewards memorization) and
    whether a set too small for a metric is an error (``strict``) or a NaN with a note."""

    extractor: str = "digits"
    cfg: Any = None  # quality.metrics.MetricConfig; None: the defaults
    references: tuple[str, ...] = ("heldout", "train")
    strict: bool = False

    def config(self) -> Any:
        from membench.quality.metrics import MetricConfig

        return self.cfg or MetricConfig()


def unavailable_quality(iset: ImageSet, extractor: str, reason: str) -> Record:
    """Quality that cannot be measured here (missing weights, images the extractor cannot take):
    reported beside every row of the image set, never stored, retried next time."""
    return Record(kind="quality", subject=iset.subject, samples=iset.samples, data={"spec": iset.train.spec},
                  test={"name": QUALITY_TEST, "extractor": {"name": extractor}}, status="unavailable", reason=reason)


def run_quality(iset: ImageSet, spec: QualitySpec, device: str, cache_dir: Path | None) -> Record:
    """Sample quality of one image set against its data's held-out and/or training images."""
    from membench.quality.evaluate import evaluate, summary

    cfg = spec.config()
    try:
        ext = resolve_quality(spec.extractor, iset.train)
    except UnavailableError as exc:
        return unavailable_quality(iset, spec.extractor, str(exc))
    rec = _stamp(plan_quality(iset, ext, cfg, spec.references))
    images, _ = iset.images()
    t0 = time.time()
    raw = evaluate(images, iset.train, ext, cfg, references=spec.references, device=device, cache_dir=cache_dir,
                   strict=spec.strict)
    flat = summary(raw)
    rec.metrics = quality_metrics_of(flat)
    rec.stats = {k: v for k, v in flat.items() if k not in rec.metrics and not k.endswith(("_ci_low", "_ci_high"))}
    rec.info = {"extractor": raw["extractor"], "references": raw["references"], "seconds": round(time.time() - t0, 3)}
    return rec


# ------------------------------------------------------------------ the one loop


@dataclass
class Measurement:
    """What :func:`measure` returns: every record (computed, reused or unavailable)."""

    records: list[Record]
    cached: list[Record] = field(default_factory=list)  # read back from the store, not computed

    @property
    def unavailable(self) -> list[Record]:
        return [r for r in self.records if not r.ok]


def _known_input_problem(iset: ImageSet, what: Any) -> str | None:
    """Why a detector cannot take this image set, when that is known without loading it."""
    if isinstance(what, str) or iset.image_shape is None or not hasattr(what, "input_problem"):
        return None
    try:
        return what.input_problem(iset.image_shape, iset.train)
    except UnavailableError as exc:  # e.g. an embedder without its weights, asked for a feature size
        return str(exc)


def measure(image_sets: Sequence[ImageSet], detectors: Sequence["Detector"], ctx: "DetectorContext",
            quality: "QualitySpec | str | None" = None, results_dir: str | Path | None = None, force: bool = False,
            keep_unavailable: bool = False) -> Measurement:
    """Every detector (and ``quality``, a feature extractor name) on every image set.

    ``quality``: a :class:`QualitySpec` or a feature extractor's name (default metrics). With
    ``results_dir`` the records are stored (and reused when present); without it they
    are only returned. Returned records carry their per-sample arrays.
    """
    from membench.core.locks import claim_each
    from membench.store.records import is_stored, lock_path, read_record, record_path, write_record

    jobs: list[tuple[ImageSet, Any, Record]] = []  # (image set, detector or QUALITY_TEST, planned record)
    unavailable: list[Record] = []
    if isinstance(quality, str):
        quality = QualitySpec(quality)
    for iset in image_sets:
        jobs += [(iset, det, plan_detection(iset, det)) for det in detectors]
        if quality is not None:
            try:
                ext = resolve_quality(quality.extractor, iset.train)
                jobs.append((iset, QUALITY_TEST, plan_quality(iset, ext, quality.config(), quality.references)))
            except UnavailableError as exc:  # reported beside each row; memorization still runs
                import warnings

                warnings.warn(f"quality of {iset.subject['name']}: unavailable: {exc}", stacklevel=2)
                unavailable.append(unavailable_quality(iset, quality.extractor, str(exc)))

    # Inputs a detector cannot take are refused before any lock or record is written (a named
    # detector: the one-line error; with keep_unavailable: the row is unavailable, nothing claimed).
    done: dict[int, Record] = {}
    for j, (iset, what, planned) in enumerate(jobs):
        problem = _known_input_problem(iset, what)
        if problem is None:
            continue
        if not keep_unavailable:
            raise UnavailableError(problem)
        rec = _stamp(planned)
        rec.status, rec.reason = "unavailable", problem
        done[j] = rec

    def compute(iset: ImageSet, what: Any) -> Record:
        from membench.core.progress import task

        if isinstance(what, str):  # QUALITY_TEST
            with task(f"quality ({quality.extractor}) of {iset.subject['name']}",  # type: ignore[union-attr]
                      enabled=ctx.progress):
                return run_quality(iset, quality, ctx.device, ctx.cache_dir)  # type: ignore[arg-type]
        iset.images()  # sampling shows its own progress
        with task(f"{detector_test(what)['name']} on {iset.subject['name']}", enabled=ctx.progress):
            return run_detector(iset, what, ctx, keep_unavailable)

    cached: list[int] = []
    if results_dir is None:
        for j, (iset, what, _) in enumerate(jobs):
            if j not in done:
                done[j] = compute(iset, what)
    else:
        index = {id(planned): j for j, (_, _, planned) in enumerate(jobs)}
        stored = (lambda job: not force and is_stored(results_dir, job[2]))
        current: ImageSet | None = None
        todo = [job for j, job in enumerate(jobs) if j not in done]
        for iset, what, planned in claim_each(todo, lambda job: lock_path(results_dir, record_path(results_dir, job[2])),
                                              stored):
            if current is not None and current is not iset:
                current.release()  # one image set in memory at a time
            current = iset
            rec = compute(iset, what)
            if rec.ok:
                write_record(results_dir, rec)
            done[index[id(planned)]] = rec
        if current is not None:
            current.release()
        for j, (_, _, planned) in enumerate(jobs):
            if j not in done:  # completed earlier (or by a concurrent run): read it back
                done[j] = read_record(record_path(results_dir, planned))
                cached.append(j)
    return Measurement([done[j] for j in range(len(jobs))] + unavailable, [done[j] for j in cached])
