"""Image grids: the most memorized samples beside their nearest training images.

Samples come from the run's cache (``<cache>/samples/<sample_key>.npz``); when the cache
is gone they are regenerated from the registered model, and used only if the regenerated
set has the same content key (same checkpoint, sampler, seed and count).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.store.records import Record


class SampleSource:
    """Loads (and caches in memory) sample sets and training sets for result records."""

    def __init__(self, cache_dir: Path | None, device: str = "cpu", regenerate: bool = True):
        from membench.core.workspace import default_cache_dir

        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.device = device
        self.regenerate = regenerate
        self._samples: dict[str, Any] = {}
        self._train: dict[str, Any] = {}

    def samples(self, rec: Record) -> Any:
        """The SampleSet a record was computed on; raises MembenchError with the reason if unavailable."""
        from membench.models.samples import SampleSet, get_samples

        key = rec.samples.get("key")
        if not key or rec.samples.get("source") != "model":
            raise MembenchError("the record's images did not come from a registered model; they are not cached")
        if key not in self._samples:
            path = self.cache_dir / "samples" / f"{Path(str(key)).name}.npz"
            if path.is_file():
                ss = SampleSet.load(path)
            elif self.regenerate:
                from membench.models.specs import resolve_model

                ss = get_samples(resolve_model(rec.subject["name"]), rec.n, rec.seed, self.device, self.cache_dir)
                if ss.meta.get("key") != key:
                    raise MembenchError(f"model {rec.subject['name']!r} changed since this result was computed "
                                        "(its samples have a different content key); rerun it to see images")
            else:
                raise MembenchError(f"samples {key} are not in the cache {self.cache_dir}")
            self._samples[key] = ss
        return self._samples[key]

    def train(self, rec: Record) -> Any:
        from membench.data import load_dataset

        spec = rec.data["spec"]
        if spec not in self._train:
            self._train[spec] = load_dataset(spec)
        ds = self._train[spec]
        if rec.data.get("fingerprint") and ds.fingerprint() != rec.data["fingerprint"]:
            raise MembenchError(f"training set {spec} changed since this result was computed")
        return ds

    def images_for(self, rec: Record, noise_index: np.ndarray) -> np.ndarray:
        ss = self.samples(rec)
        pos = {int(k): i for i, k in enumerate(ss.noise_index)}
        missing = [int(k) for k in noise_index if int(k) not in pos]
        if missing:
            raise MembenchError(f"samples lack noise indices {missing[:5]}")
        return ss.images[[pos[int(k)] for k in noise_index]]


def _strength(scores: np.ndarray, higher_is_memorized: bool) -> np.ndarray:
    """Larger = more memorized, whatever the detector's orientation."""
    return np.asarray(scores, np.float64) if higher_is_memorized else -np.asarray(scores, np.float64)


def category(t_flag: bool, s_flag: bool, same: bool) -> str:
    if t_flag and s_flag:
        return "transferred" if same else "switched image"
    if t_flag:
        return "suppressed"
    if s_flag:
        return "introduced"
    return "neither"


@dataclass
class Grid:
    """Column headers and, per row, a caption and a PNG strip of images (one per column)."""

    columns: list[str]
    rows: list[tuple[str, bytes]]


def pair_grid(pair: dict[str, Any], source: SampleSource, top: int) -> Grid:
    """Rows: the ``top`` noises where teacher or student is most memorized; columns: teacher
    sample, its nearest training image, student sample (same noise), its nearest."""
    from membench.report.plots import image_strip

    p, srec, trec = pair["paired"], pair["student_record"], pair["teacher_record"]
    hi = bool(srec.test.get("higher_is_memorized", False))
    strength = np.maximum(_strength(p.teacher_scores, hi), _strength(p.student_scores, hi))
    order = np.argsort(-strength, kind="stable")[:top]
    noises = p.noise_index[order]
    t_img = source.images_for(trec, noises)
    s_img = source.images_for(srec, noises)
    train = source.train(srec).images
    t_train = source.train(trec).images
    rows = []
    for k, i in enumerate(order):
        strip = image_strip([t_img[k], t_train[int(p.teacher_nearest[i])], s_img[k], train[int(p.student_nearest[i])]])
        cat = category(bool(p.teacher_flags[i]), bool(p.student_flags[i]),
                       bool(p.teacher_nearest[i] == p.student_nearest[i]))
        rows.append((f"noise {int(noises[k])}: {cat}; score teacher {p.teacher_scores[i]:.3f}, "
                     f"student {p.student_scores[i]:.3f}; nearest #{int(p.teacher_nearest[i])} / "
                     f"#{int(p.student_nearest[i])}", strip))
    return Grid(["teacher sample", "its nearest training image", "student, same noise", "its nearest training image"],
                rows)


def model_grid(rec: Record, source: SampleSource, top: int) -> Grid:
    """The ``top`` most memorized samples of one model beside their nearest training images."""
    from membench.report.plots import image_strip

    arr = rec.load_arrays()
    hi = bool(rec.test.get("higher_is_memorized", False))
    order = np.argsort(-_strength(arr["scores"], hi), kind="stable")[:top]
    noises = arr["noise_index"][order]
    imgs = source.images_for(rec, noises)
    train = source.train(rec).images
    rows = [(f"noise {int(noises[k])}: score {arr['scores'][i]:.3f}{', flagged' if arr['flags'][i] else ''}; "
             f"nearest #{int(arr['nearest'][i])}", image_strip([imgs[k], train[int(arr["nearest"][i])]]))
            for k, i in enumerate(order)]
    return Grid(["sample", "its nearest training image"], rows)
