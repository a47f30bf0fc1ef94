"""Image grids: the most memorized samples beside their nearest training images.

Three parts, kept apart: ``SampleSource`` finds the images, ``render_image`` draws one image
(the only place that knows pixels: gray or RGB), and ``pair_grid``/``model_grid`` choose
the rows and label each image; ``html`` lays the grids out.

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


def render_image(img: np.ndarray, cell: int = 72) -> bytes:
    """One (C, H, W) image in [-1, 1] as a PNG about ``cell`` pixels wide, upscaled without smoothing."""
    import io

    from PIL import Image

    from membench.core.errors import MembenchError

    arr = np.clip((np.asarray(img, dtype=np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):  # gray or RGB only: never drop channels silently
        raise MembenchError(f"image grid: expected (1 or 3, H, W) images, got shape {arr.shape}")
    arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    tile = Image.fromarray(arr).convert("RGB")
    scale = max(1, round(cell / max(tile.size)))
    tile = tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    tile.save(buf, format="PNG")
    return buf.getvalue()


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
    """Rows of labelled images: per row a caption and its cells, each (label, PNG bytes).

    ``noises`` identifies the rows, so that a grid showing the same images as another is dropped."""

    title: str
    rows: list[tuple[str, list[tuple[str, bytes]]]]
    noises: tuple[int, ...] = ()


def _dist(arrays: Any, i: int) -> str:
    return f", distance {float(arrays[i]):.3g}" if arrays is not None else ""


def pair_grid(pair: dict[str, Any], source: SampleSource, top: int, by: str = "teacher") -> Grid:
    """The ``top`` noises where the teacher's (``by="teacher"``) or the student's score is most
    memorized; per row: teacher sample, its nearest training image, the student's sample from
    the same noise, its nearest training image, each labelled."""
    from membench.report.plots import label

    p, srec, trec, r = pair["paired"], pair["student_record"], pair["teacher_record"], pair["row"]
    hi = bool(srec.test.get("higher_is_memorized", False))
    strength = _strength(p.teacher_scores if by == "teacher" else p.student_scores, hi)
    order = np.argsort(-strength, kind="stable")[:top]
    noises = p.noise_index[order]
    t_img = source.images_for(trec, noises)
    s_img = source.images_for(srec, noises)
    s_train = source.train(srec).images
    t_train = source.train(trec).images
    d = p.distance_source == "d1"
    t_name, s_name = label(r["teacher"], "teacher"), label(r["student"], r["role"])
    rows = []
    for k, i in enumerate(order):
        tn, sn = int(p.teacher_nearest[i]), int(p.student_nearest[i])
        cat = category(bool(p.teacher_flags[i]), bool(p.student_flags[i]), tn == sn)
        cells = [(f"{t_name}: sample", render_image(t_img[k])),
                 (f"its nearest: #{tn}" + (_dist(p.teacher_distance, i) if d else ""), render_image(t_train[tn])),
                 (f"{s_name}: same noise", render_image(s_img[k])),
                 (f"its nearest: #{sn}" + (_dist(p.student_distance, i) if d else ""), render_image(s_train[sn]))]
        caption = (f"noise {int(noises[k])}: {cat}. {r['detector']} score: teacher {p.teacher_scores[i]:.3g}"
                   f"{' (flagged)' if p.teacher_flags[i] else ''}, student {p.student_scores[i]:.3g}"
                   f"{' (flagged)' if p.student_flags[i] else ''}")
        rows.append((caption, cells))
    whose = t_name if by == "teacher" else s_name
    title = f"{r['detector']}: {s_name} vs {t_name}, seed {r['seed']}; ranked by {whose}'s score"
    return Grid(title, rows, (r["teacher"], r["student"], int(r["seed"]), *map(int, noises)))


def model_grid(rec: Record, source: SampleSource, top: int) -> Grid:
    """The ``top`` most memorized samples of one model beside their nearest training images."""
    from membench.report.plots import label

    arr = rec.load_arrays()
    hi = bool(rec.test.get("higher_is_memorized", False))
    order = np.argsort(-_strength(arr["scores"], hi), kind="stable")[:top]
    noises = arr["noise_index"][order]
    imgs = source.images_for(rec, noises)
    train = source.train(rec).images
    name = label(rec.subject["name"], rec.subject.get("role"))
    d1 = arr.get("extra_d1")
    rows = []
    for k, i in enumerate(order):
        n = int(arr["nearest"][i])
        cells = [(f"{name}: sample", render_image(imgs[k])),
                 (f"its nearest: #{n}" + _dist(d1, i), render_image(train[n]))]
        rows.append((f"noise {int(noises[k])}: {rec.test['name']} score {arr['scores'][i]:.3g}"
                     f"{' (flagged)' if arr['flags'][i] else ''}", cells))
    title = f"{rec.test['name']}: {name}, n={rec.n}, seed {rec.seed}; ranked by its score"
    return Grid(title, rows, (rec.subject["name"], int(rec.seed), *map(int, noises)))
