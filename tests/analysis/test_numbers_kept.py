"""The defaults' numbers did not move in the redesign of issue 11.

``membench run --model all --detector all`` on the committed models (64 samples, seed 0)
must give the per-sample arrays and leaderboard values recorded with the code before the
move (commit 1112d8a; see scripts/record_reference_numbers.py for the command).
"""
import json
from pathlib import Path

import numpy as np
import pytest

import membench

DATA = Path(__file__).resolve().parents[1] / "fixtures"
ADDED_SINCE = {"nn-heldout", "copying", "mmd-heldout"}  # issue 14: in `all`, not in the reference


# Flags, counts and matched indices must be equal; continuous values within this relative tolerance.
# The same torch build gives float32 results that differ in the 5th digit between CPUs (measured:
# per-sample carlini scores up to 5.5e-5, teacher-euler1's fid_train 1.0e-5 and kid_heldout 4.1e-5 on
# the 2026-12-02 machine, with the recording commit itself), so "kept" is asserted to 1e-3.
CROSS_MACHINE_RTOL = 1e-3


@pytest.mark.slow
def test_run_all_reproduces_the_numbers_recorded_before_the_redesign(tmp_path):
    ref = json.loads((DATA / "reference_n64.json").read_text())
    with np.load(DATA / "reference_n64.npz") as z:
        arrays = {k: z[k] for k in z.files}
    board = membench.run(models="all", detectors="all", n_samples=ref["n_samples"], seed=ref["seed"], device="cpu",
                         results_dir=tmp_path / "res", cache_dir=tmp_path / "cache")
    ok = board[board["status"] == "ok"]
    got = {f"{r.model}|{r.detector}": r for r in ok.itertuples()}
    # same pairs ran (sscd and clip: no weights offline, then and now), plus the set-level tests added since
    added = {k for k in got if k.split("|")[1] in ADDED_SINCE}
    assert set(got) - added == set(ref["rows"])
    for key, want in ref["rows"].items():
        row = got[key]
        for col, value in want.items():
            if value is None:
                assert np.isnan(getattr(row, col)), (key, col)
            elif col in ("memorized", "n_flagged", "ci_low", "ci_high"):
                assert getattr(row, col) == value, (key, col)
            else:
                assert getattr(row, col) == pytest.approx(value, rel=CROSS_MACHINE_RTOL, abs=1e-7), (key, col)
    from membench.store.records import iter_records

    stored = {f"{r.subject['name']}|{r.test['name']}": r.load_arrays() for r in iter_records(tmp_path / "res", "detection")}
    for key, value in arrays.items():
        model, det, field = key.split("|")
        mine = stored[f"{model}|{det}"][field]
        if field == "scores":
            np.testing.assert_allclose(mine, value, rtol=CROSS_MACHINE_RTOL, atol=1e-7, err_msg=key)
        else:
            np.testing.assert_array_equal(mine, value, err_msg=key)
