"""The one result store: one record per measurement, HELM-style, neutral about the metric.

A record says what was measured (the images and their provenance, the reference data,
the test — a detector, a quality extractor, a validation task, a study point — and its
configuration and seed), then one or more metrics, each with its value, interval, what the
interval runs over (samples, seeds, bootstrap resamples) and its direction; a reference to
its null or control where there is one; and the per-sample arrays beside it (``.npz``).

Layout: ``<results>/records/<kind>/<subject>/<test>-<key>.json`` (+ ``.npz``). The JSON is
written last, so its presence marks a completed measurement; every file is written
atomically. The leaderboard, the effect table, the report and ``check`` are built from
these records only.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from membench.core.errors import MembenchError
from membench.core.faults import fault_point

SCHEMA = 2
KINDS = ("detection", "quality", "validation", "study")


def content_key(parts: Any) -> str:
    """A short, stable hash of JSON-able ``parts`` (configurations, provenance)."""
    from membench.core.io import json_digest

    return json_digest(parts, 12)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)


@dataclass
class Metric:
    """One number with its uncertainty and direction.

    ``over`` names what the interval runs over ("samples", "seeds", "images",
    "bootstrap"); exactly one of the directions is set: ``higher_is_memorized`` for a
    memorization metric, ``higher_is_better`` for a quality or separation metric.
    """

    value: float
    interval: tuple[float, float] | None = None
    interval_method: str = ""
    over: str = ""
    higher_is_memorized: bool | None = None
    higher_is_better: bool | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval is not None else None
        return {k: v for k, v in d.items() if v is not None and v != ""}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Metric":
        iv = d.get("interval")
        return cls(value=float(d["value"]), interval=(float(iv[0]), float(iv[1])) if iv else None,
                   interval_method=d.get("interval_method", ""), over=d.get("over", ""),
                   higher_is_memorized=d.get("higher_is_memorized"), higher_is_better=d.get("higher_is_better"))


@dataclass
class Record:
    """One measurement. ``arrays`` (per-sample) travel with it in memory and are stored beside it."""

    kind: str
    subject: dict[str, Any]  # what made the images: {"name", "role", ...model fields} or {"name", "role": "samples"}
    samples: dict[str, Any]  # {"key", "n", "seed", "source"}
    data: dict[str, Any]  # the reference data: {"spec", "fingerprint"}
    test: dict[str, Any]  # {"name", "base", "config", ...}: the detector, extractor, task or study
    metrics: dict[str, Metric] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)  # other scalars (counts, medians, settings)
    null: dict[str, Any] | None = None  # its null or control, where there is one
    status: str = "ok"  # ok | unavailable (unavailable records are reported, never stored)
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # how it was computed (preprocessing, weights, timing)
    created: str = ""
    membench: str = ""
    arrays: dict[str, Any] = field(default_factory=dict, repr=False)
    path: Path | None = field(default=None, repr=False, compare=False)

    # ---------------------------------------------------------------- accessors
    @property
    def seed(self) -> int:
        return int(self.samples.get("seed", 0))

    @property
    def n(self) -> int:
        return int(self.samples.get("n", 0))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def value(self, metric: str, default: float = float("nan")) -> float:
        m = self.metrics.get(metric)
        return m.value if m is not None else default

    def key(self) -> str:
        """What identifies the measurement (not its outcome): the file name's key."""
        return content_key([self.kind, self.subject.get("name"), self.subject.get("checkpoint_hash"),
                            self.samples, self.data.get("fingerprint"), self.test])

    # ---------------------------------------------------------------- (de)serialization
    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": self.kind, "subject": self.subject, "samples": self.samples,
                "data": self.data, "test": self.test,
                "metrics": {k: m.to_json() for k, m in self.metrics.items()}, "stats": self.stats,
                "null": self.null, "status": self.status, "reason": self.reason, "info": self.info,
                "created": self.created, "membench": self.membench}

    @classmethod
    def from_json(cls, d: dict[str, Any], path: Path | None = None) -> "Record":
        where = path or "record"
        if not isinstance(d, dict):
            raise MembenchError(f"{where}: corrupt record (not a JSON object)")
        if d.get("schema") != SCHEMA:
            raise MembenchError(f"{where}: record schema {d.get('schema')!r} is not {SCHEMA} "
                                "(written by another membench version; rerun to recompute)")
        missing = [k for k in ("subject", "samples", "data", "test", "metrics") if not isinstance(d.get(k), dict)]
        if not missing and "name" not in d["subject"]:
            missing.append("subject.name")
        if not missing and "name" not in d["test"]:
            missing.append("test.name")
        if missing:
            raise MembenchError(f"{where}: corrupt record (missing {', '.join(missing)})")
        if d["kind"] not in KINDS:
            raise MembenchError(f"{where}: corrupt record (unknown kind {d['kind']!r})")
        try:
            metrics = {k: Metric.from_json(v) for k, v in d["metrics"].items()}
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise MembenchError(f"{where}: corrupt record (bad metric: {exc})") from None
        return cls(kind=d["kind"], subject=d["subject"], samples=d["samples"], data=d["data"], test=d["test"],
                   metrics=metrics, stats=d.get("stats") or {}, null=d.get("null"), status=d.get("status", "ok"),
                   reason=d.get("reason", ""), info=d.get("info") or {}, created=d.get("created", ""),
                   membench=d.get("membench", ""), path=path)

    def load_arrays(self) -> dict[str, Any]:
        """The per-sample arrays (from memory, or read from beside the stored record)."""
        if self.arrays:
            return self.arrays
        if self.path is None:
            return {}
        import numpy as np

        npz = self.path.with_name(self.path.name.removesuffix(".json") + ".npz")
        try:
            with np.load(npz, allow_pickle=False) as z:
                self.arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # missing, truncated or pickled arrays: one line, the caller skips it
            raise MembenchError(f"{npz}: unreadable record arrays ({type(exc).__name__}: {exc})") from None
        return self.arrays


# ------------------------------------------------------------------ the store


def record_path(results_dir: str | Path, rec: Record) -> Path:
    """Where ``rec`` is (or would be) stored."""
    return (Path(results_dir) / "records" / rec.kind / _safe(str(rec.subject["name"]))
            / f"{_safe(str(rec.test['name']))}-{rec.key()}.json")


def lock_path(results_dir: str | Path, target: str | Path) -> Path:
    """The lock file guarding one record (or a name such as ``"leaderboard"``), under ``<results>/.locks``."""
    target = Path(target)
    try:
        rel = target.relative_to(Path(results_dir) / "records")
    except ValueError:
        rel = Path(target.name)
    return Path(results_dir) / ".locks" / rel.parent / f"{rel.name.removesuffix('.json')}.lock"


# The arrays a stored record of each kind must have beside it (a record without them is partial).
REQUIRED_ARRAYS = {"detection": ("noise_index", "scores", "flags", "nearest")}


def verify_record(path: str | Path) -> Record:
    """A stored record read back whole, or ``CorruptRecordError`` (one line): its JSON parses and
    has the schema's keys, and its arrays file (when it names one) is there, matches the digest
    written with it and holds the arrays its kind needs."""
    import hashlib

    import numpy as np

    from membench.core.errors import CorruptRecordError

    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        rec = Record.from_json(raw, path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptRecordError(f"{path}: corrupt record ({type(exc).__name__}: {exc})") from None
    except MembenchError as exc:
        raise CorruptRecordError(str(exc)) from None
    name = raw.get("arrays")
    need = REQUIRED_ARRAYS.get(rec.kind, ())
    if not name:
        if need:
            raise CorruptRecordError(f"{path}: partial record (no arrays file named)")
        return rec
    npz = path.with_name(str(name))
    try:
        data = npz.read_bytes()
    except OSError as exc:
        raise CorruptRecordError(f"{path}: partial record (arrays {npz.name}: {exc.strerror or exc})") from None
    digest = raw.get("arrays_sha256")
    if digest and hashlib.sha256(data).hexdigest() != digest:
        raise CorruptRecordError(f"{path}: corrupt record (arrays {npz.name} do not match their digest)")
    try:
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            files = set(z.files)
            for k in z.files:
                z[k]  # decompress every array: a truncated member fails here
    except Exception as exc:
        raise CorruptRecordError(f"{path}: corrupt record (arrays {npz.name}: {type(exc).__name__})") from None
    missing = [k for k in need if k not in files]
    if missing:
        raise CorruptRecordError(f"{path}: partial record (arrays {npz.name} lack {', '.join(missing)})")
    return rec


def is_stored(results_dir: str | Path, rec: Record) -> bool:
    """Whether ``rec`` is stored whole; a corrupt or partial one is reported (a warning) and
    counts as not stored, so that it is recomputed and replaced."""
    from membench.core.errors import CorruptRecordError

    path = record_path(results_dir, rec)
    if not path.is_file():
        return False
    try:
        verify_record(path)
    except CorruptRecordError as exc:
        from membench.core.io import file_stamp

        stamp = file_stamp(path)
        if stamp not in _REPORTED:  # asked twice per record (before and under its lock): said once
            _REPORTED.add(stamp)
            warnings.warn(f"{exc}; recomputing it", stacklevel=2)
        return False
    return True


_REPORTED: set[tuple[str, int, int]] = set()


def write_record(results_dir: str | Path, rec: Record) -> Path:
    """Store ``rec`` (arrays first, then the JSON that marks it complete). Unavailable records are refused."""
    from membench.core.io import atomic_save_npz, atomic_write_json

    if not rec.ok:
        raise ValueError("unavailable records are reported, not stored")
    path = record_path(results_dir, rec)
    body = rec.to_json()
    if rec.arrays:
        import hashlib

        npz = path.with_name(path.name.removesuffix(".json") + ".npz")
        atomic_save_npz(npz, **rec.arrays)
        body["arrays"] = npz.name
        body["arrays_sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()  # checked on read-back
    fault_point("record-arrays-written")
    atomic_write_json(path, body)
    fault_point("record-written")
    rec.path = path
    return path


def read_record(path: str | Path) -> Record:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MembenchError(f"{path}: corrupt record ({exc})") from None
    return Record.from_json(data, path)


def iter_records(results_dir: str | Path, kind: str | None = None,
                 problems: list[str] | None = None, corrupt: list[tuple[Path, str]] | None = None
                 ) -> Iterator[Record]:
    """Every readable record (of ``kind``); corrupt ones are reported (a warning, and appended
    to ``problems`` when given, with their path to ``corrupt``) and skipped."""
    root = Path(results_dir) / "records"
    pattern = f"{kind}/*/*.json" if kind else "*/*/*.json"
    for path in sorted(root.glob(pattern)):
        try:
            yield read_record(path)
        except MembenchError as exc:
            if problems is not None:
                problems.append(str(exc))
            if corrupt is not None:
                corrupt.append((path, str(exc)))
            warnings.warn(f"skipping {exc}", stacklevel=2)


def has_records(results_dir: str | Path) -> bool:
    return (Path(results_dir) / "records").is_dir()
