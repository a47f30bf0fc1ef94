"""The study interface and the helpers every study uses to write its outputs atomically."""
from __future__ import annotations

import io
import json
import platform
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Sequence

import pandas as pd

from membench.core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from membench.core.errors import MembenchError
from membench.core.specs import parse_value


@dataclass
class StudyContext:
    device: str = "cpu"
    progress: bool = False
    command: str = ""  # the command line that ran the study, recorded in record.json


class Study:
    """Base class; subclasses are ``@dataclass``es declared in ``membench.studies.STUDIES``
    (or plugins), which sets ``registry_name`` and ``description`` when it loads them."""

    registry_name: ClassVar[str] = "?"
    description: ClassVar[str] = ""
    # Overrides that make the study run in seconds (tests, smoke runs); not a scientific setting.
    QUICK: ClassVar[dict[str, Any]] = {}

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Validate the configuration; raise MembenchError with one line if it is bad."""

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        raise NotImplementedError


def _coerce(cls: type, key: str, value: Any, owner: str) -> Any:
    """Turn a ``--set`` value into the field's type (one line naming the option when it is not):
    tuples from comma lists, their items typed like the default's items (text when it is empty)."""
    from membench.core.options import coerce_value, option_types

    f = {x.name: x for x in fields(cls)}[key]
    hint, meta = option_types(cls).get(key, (Any, {}))
    if str(f.type).startswith("tuple"):
        items = value if isinstance(value, (list, tuple)) else [value]
        out = []
        for item in items:
            parts = [parse_value(p) for p in str(item).split(",") if p.strip()] if isinstance(item, str) else [item]
            out.extend(parts)
        default = f.default if isinstance(f.default, tuple) else ()
        item_type = type(default[0]) if default else str
        if item_type in (bool, int, float, str):
            out = [coerce_value(owner, key, v, item_type) for v in out]
        return tuple(out)
    return coerce_value(owner, key, value, hint, f.metadata)


def make_study(name: str, overrides: dict[str, Any] | None = None, quick: bool = False) -> Study:
    """Build a registered study; ``quick`` applies its seconds-scale configuration first."""
    from membench.studies import STUDIES

    cls = STUDIES.get(name)
    valid = {f.name for f in fields(cls)}
    params: dict[str, Any] = dict(cls.QUICK) if quick else {}
    overrides = dict(overrides or {})
    bad = set(overrides) - valid
    if bad:
        raise MembenchError(f"study {name!r}: unknown option(s) {sorted(bad)}; options: {sorted(valid)}")
    params.update(overrides)
    try:
        params = {k: _coerce(cls, k, v, f"study {name!r}") for k, v in params.items()}
        study = cls(**params)
    except (TypeError, ValueError) as exc:
        raise MembenchError(f"study {name!r}: {exc}") from None
    study.check()
    return study


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``["sizes=16,64", "seed=1"]`` -> ``{"sizes": "16,64", "seed": 1}`` (lists are split per field)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise MembenchError(f"bad --set {item!r}: expected key=value")
        value = value.strip()
        out[key.strip().replace("-", "_")] = value if "," in value else parse_value(value)
    return out


# ------------------------------------------------------------------ writing outputs


def write_table(out: Path, name: str, df: pd.DataFrame) -> Path:
    path = out / f"{name}.csv"
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))
    return path


def write_figure(out: Path, name: str, fig: Any) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    path = out / f"{name}.png"
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_record(out: Path, study: Study, ctx: StudyContext, started: float, extra: dict[str, Any] | None = None) -> Path:
    import torch

    from membench import __version__

    rec = {"study": study.registry_name, "config": study.config(), "command": ctx.command,
           "device": ctx.device, "device_name": _device_name(ctx.device), "wall_time_s": round(time.time() - started, 1),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "membench": __version__,
           "python": platform.python_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
    path = out / "record.json"
    atomic_write_json(path, rec)
    return path


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (imported lazily: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
