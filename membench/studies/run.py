"""``membench study NAME``: build the study from its options and run it into its output folder."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from membench.studies.base import StudyContext, make_study, parse_sets


def default_out(name: str, quick: bool) -> Path:
    from membench.core.workspace import Workspace

    # Study outputs go to the workspace; the committed ones under benchmarks/ are written
    # only when that folder is passed with --out.
    return Workspace.resolve().studies / (f"{name}-quick" if quick else name)


def run_study(name: str, sets: Sequence[str] | None = None, quick: bool = False, out: str | Path | None = None,
              device: str = "auto", progress: bool = True, command: str = "") -> tuple[Path, dict[str, pd.DataFrame]]:
    from membench.models.samples import resolve_device

    study = make_study(name, parse_sets(sets), quick=quick)
    target = Path(out) if out else default_out(study.registry_name, quick)
    ctx = StudyContext(device=resolve_device(device), progress=progress, command=command)
    return target, study.run(target, ctx)
