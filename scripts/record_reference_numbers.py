"""Record a results folder's numbers as a test fixture: per-sample arrays and leaderboard values.

Made for the redesign of issue 11, whose numbers must not move: the fixture
``tests/fixtures/reference_n64.{json,npz}`` was recorded from the code before the move
(commit 1112d8a, result schema 1) with

    git worktree add /tmp/pre 1112d8a
    cd /tmp/pre && python -m membench run --model all --detector all --n-samples 64 --results-dir /tmp/pre/r64
    python scripts/record_reference_numbers.py /tmp/pre/r64 tests/fixtures/reference_n64

and ``tests/analysis/test_numbers_kept.py`` recomputes the same run with the current code.
Reads the schema-1 layout (``runs/<model>/<detector>-<key>.json`` + ``.npz``) or the
current store (``records/``).
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS = ("noise_index", "scores", "flags", "nearest")
VALUES = ("memorized", "ci_low", "ci_high", "n_flagged", "score_median", "fid_heldout", "kid_heldout",
          "precision_heldout", "recall_heldout", "fid_train")


def arrays_of(results: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if (results / "runs").is_dir():  # schema 1
        for path in sorted((results / "runs").glob("*/*.json")):
            rec = json.loads(path.read_text())
            with np.load(path.with_suffix(".npz")) as z:
                for f in FIELDS:
                    out[f"{rec['model']['name']}|{rec['detector']['name']}|{f}"] = z[f]
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from membench.store.records import iter_records

        for rec in iter_records(results, "detection"):
            arr = rec.load_arrays()
            for f in FIELDS:
                out[f"{rec.subject['name']}|{rec.test['name']}|{f}"] = arr[f]
    return out


def main(results: str, stem: str) -> None:
    results = Path(results)
    board = pd.read_csv(results / "leaderboard.csv")
    board = board[board["status"] == "ok"]
    values = {f"{r.model}|{r.detector}": {k: (None if pd.isna(getattr(r, k)) else float(getattr(r, k)))
                                           for k in VALUES} for r in board.itertuples()}
    Path(stem + ".json").write_text(json.dumps({"n_samples": 64, "seed": 0, "rows": values}, indent=1, sort_keys=True))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays_of(results))
    Path(stem + ".npz").write_bytes(buf.getvalue())


if __name__ == "__main__":
    main(*sys.argv[1:3])
