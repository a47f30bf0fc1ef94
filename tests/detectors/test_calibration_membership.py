"""Calibration (held-out false-flag rate, fpr= thresholds) and the membership / data-copying tests."""
from __future__ import annotations

import numpy as np
import pytest

from membench.core.errors import MembenchError
from membench.data import Dataset
from membench.detectors.base import DetectorContext, make_detector
from membench.detectors.calibration import threshold_at_fpr
from membench.measure import ImageSet, measure


def toy(n_train: int = 16, n_held: int = 60, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(spec="toy", images=rng.uniform(-1, 1, (n_train, 1, 4, 4)).astype(np.float32),
                   heldout=rng.uniform(-1, 1, (n_held, 1, 4, 4)).astype(np.float32))


def copies(ds: Dataset, n: int, noise: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pick = ds.images[rng.integers(0, len(ds), n)]
    return (pick + noise * rng.standard_normal(pick.shape)).astype(np.float32)


def novel(n: int, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 4, 4)).astype(np.float32)


def run(det: str, images: np.ndarray, ds: Dataset):
    iset = ImageSet.of_images(images, {"name": "x", "role": "teacher"}, ds)
    return measure([iset], [make_detector(det)], DetectorContext()).records[0]


def test_threshold_at_fpr_lets_at_most_the_rate_through() -> None:
    s = np.arange(100, dtype=float)
    assert (s > threshold_at_fpr(s, 0.05, True)).sum() == 5
    assert (s < threshold_at_fpr(s, 0.05, False)).sum() == 5
    assert (s > threshold_at_fpr(s, 0.001, True)).sum() == 0


def test_every_detection_record_carries_its_heldout_false_flag_rate() -> None:
    ds = toy()
    rec = run("carlini", copies(ds, 50, 0.01), ds)
    ctrl = make_detector("carlini").detect(ds.heldout, ds, DetectorContext())
    assert rec.metrics["heldout_flagged"].value == pytest.approx(ctrl.flags.mean())
    lo, hi = rec.metrics["heldout_flagged"].interval
    assert lo <= rec.metrics["heldout_flagged"].value <= hi
    assert rec.null["heldout"]["n"] == len(ds.heldout)


def test_fpr_option_sets_the_threshold_from_heldout_images() -> None:
    ds = toy(n_held=200)
    rec = run("carlini:fpr=0.05", copies(ds, 50, 0.01), ds)
    assert rec.metrics["heldout_flagged"].value <= 0.05
    assert rec.test["config"]["fpr"] == 0.05 and rec.info["calibration"]["threshold"] is not None
    assert rec.metrics["memorized"].value > 0.9  # near-exact copies still pass a 5% cut
    with pytest.raises(MembenchError):
        make_detector("l2ratio:fpr=1.5")
    with pytest.raises(MembenchError):
        make_detector("nn-heldout:fpr=0.01")  # a set-level test has no per-image cut


def test_nn_heldout_separates_copies_from_novel_and_reports_its_null() -> None:
    ds = toy()
    cp = run("nn-heldout", copies(ds, 80, 0.05), ds)
    nv = run("nn-heldout", novel(80), ds)
    assert cp.metrics["memorized"].value > 0.95
    assert nv.metrics["memorized"].value < 0.8
    null = cp.metrics["heldout_flagged"].value
    assert 0.2 < null < 0.8  # real held-out images: about even


def test_copying_statistic_is_negative_for_copies_and_not_for_novel_images() -> None:
    ds = toy(n_train=30, n_held=150)
    cp = run("copying:cells=2", copies(ds, 150, 0.02), ds).metrics["ct"].value
    nv = run("copying:cells=2", novel(150), ds).metrics["ct"].value
    assert cp < -3 and nv > -3


def test_mmd_heldout_detects_samples_drawn_from_the_training_set() -> None:
    ds = toy(n_train=30, n_held=100)
    cp = run("mmd-heldout:permutations=50", copies(ds, 100, 0.05), ds)
    nv = run("mmd-heldout:permutations=50", novel(100), ds)
    assert cp.metrics["mmd_p"].value <= 0.05 < nv.metrics["mmd_p"].value


def test_membership_tests_are_opt_in_and_listed() -> None:
    from membench.api import resolve_detectors
    from membench.core.registry import names

    everything = [d.registry_name for d in resolve_detectors("all")[0]]
    assert {"nn-heldout", "copying", "mmd-heldout"} <= set(everything)
    assert not {"loss-mia", "pia", "secmi"} & set(everything)
    assert [d.registry_name for d in resolve_detectors("membership")[0]] == ["loss-mia", "pia", "secmi"]
    assert {"loss-mia", "pia", "secmi"} <= set(names("detectors"))


def test_membership_test_separates_a_memorizing_closed_form_model() -> None:
    """The empirical optimal denoiser reproduces its training images: every attack sees it."""
    from membench.models.optimal import EmpiricalOptimalDenoiser

    ds = toy(n_train=16, n_held=40)
    model = EmpiricalOptimalDenoiser(ds.images)

    class Ctx(DetectorContext):
        def load_denoiser(self, which: str = "self"):
            return model, {}

    for name in ("loss-mia:levels=3,noises=2", "pia:levels=3", "secmi:levels=2,inversion_steps=3"):
        out = make_detector(name).detect(ds.images[:4], ds, Ctx())
        assert out.metrics["auc"].value > 0.9, name
        assert out.info["n_nonmembers_eval"] == 20


def test_leaderboard_shows_the_heldout_control_beside_the_fraction() -> None:
    from membench.store.leaderboard import build

    ds = toy()
    rows = build([run("l2ratio", copies(ds, 20, 0.01), ds), run("copying:cells=2", copies(ds, 40, 0.01), ds)])
    l2 = rows[rows["detector"] == "l2ratio"].iloc[0]
    assert l2["heldout_flagged_ci_low"] <= l2["heldout_flagged"] <= l2["heldout_flagged_ci_high"]
    assert rows[rows["detector"] == "copying:cells=2"]["ct"].notna().all()
