"""Sample-based membership and data-copying tests: do the samples sit closer to the training
set than to never-trained images of the same distribution? They need only the samples, so
every model (one-step students included) gets them. Each uses the training set's held-out
split: a *reference* part the size of the training set (the first ``len(train)`` held-out
images) and a *null* part (the rest), which is run through the same test as real images that
were never trained on.

* ``nn-heldout``: per sample, is the nearest training image nearer than the nearest
  reference held-out image (flattened pixels, exact L2)? ``memorized`` = share of samples that
  are; the null is the same share for the null held-out images (about 1/2 when the two
  references are exchangeable), stored as ``heldout_flagged``.
* ``copying`` (Meehan, Chaudhuri & Dasgupta 2020, C_T): cells by k-means on the training
  images (``cells``); in each cell the nearest-training-image distances of the samples and of
  the null held-out images are compared by a Mann-Whitney U test (z-score, negative when the
  samples are closer); C_T is the average of the cell z-scores weighted by the held-out
  images' share of each cell, over cells with at least ``min_count`` of both. C_T << 0: data
  copying; under no copying C_T ~ N(0, 1). The null C_T (the reference held-out images in
  place of the samples) is stored as ``ct_null``. ``memorized`` = share of samples in cells
  whose z < ``z_flag`` (-3: copying cells).
* ``mmd-heldout``: a kernel two-sample statistic, T = MMD^2(samples, held-out reference) -
  MMD^2(samples, training), Gaussian kernel with the median-distance bandwidth; T > 0 when
  the samples' distribution is nearer the training set's. Its p-value comes from
  ``permutations`` random relabellings of training vs reference images (same sizes). Per
  sample: the witness k-mean to the training images minus to the reference; ``memorized`` =
  share of samples whose witness is above the null held-out images' median witness (so
  about 1/2 of real never-trained images; their share is ``heldout_flagged``).

Cost on the defaults (1,000 samples, 64 training images, 300 held-out, 8x8): under a second
each (``mmd-heldout``: 200 permutations of a 1,128-point kernel matrix).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from membench.core.errors import MembenchError, UnavailableError
from membench.data import Dataset
from membench.detectors.base import Detector, DetectorContext, DetectorOutput, check_compatible


def _split_heldout(train: Dataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(reference, null): the first len(train) held-out images and the rest."""
    held = train.heldout
    n = len(train)
    if held is None or len(held) < n + 2:
        raise UnavailableError(f"{name}: needs more held-out images than training images ({n} + 2); "
                               f"{train.spec} has {0 if held is None else len(held)}")
    held = np.asarray(held, np.float32)
    return held[:n], held[n:]


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float64).reshape(len(x), -1)


def _wilson_metric(k: int, n: int, over: str):
    from membench.core.stats import wilson_interval
    from membench.store.records import Metric

    return Metric(k / n, wilson_interval(k, n), "wilson95", over, higher_is_better=False)


@dataclass
class NearestHeldout(Detector):
    """Nearest training image nearer than the nearest of as many held-out images."""

    score_name = "d_train_over_d_heldout"
    higher_is_memorized = False
    needs_training_shape = True
    calibrate_on_heldout = False  # its null is built in (the held-out images not used as reference)
    level = "set"

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        from membench.detectors.knn import knn_l2

        check_compatible(samples, train)
        ref, null = _split_heldout(train, "nn-heldout")

        def ratio(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            dt, it = knn_l2(x, train.images, k=1)
            dh, _ = knn_l2(x, ref, k=1)
            return dt[:, 0] / np.maximum(dh[:, 0], 1e-12), it[:, 0], dh[:, 0]

        r, idx, dh = ratio(samples)
        r_null, _, _ = ratio(null)
        k_null = int((r_null < 1).sum())
        return DetectorOutput(scores=r, flags=r < 1, nearest=idx, extras={"d_heldout": dh},
                              metrics={"heldout_flagged": _wilson_metric(k_null, len(null), "null held-out images")},
                              info={"reference": f"first {len(ref)} held-out images", "null_images": int(len(null)),
                                    "space": "pixels"})


def mann_whitney_z(a: np.ndarray, b: np.ndarray) -> float:
    """z-score of the Mann-Whitney U of ``a`` vs ``b`` (negative when ``a`` tends to be smaller), tie-corrected."""
    from scipy.stats import rankdata

    n1, n2 = len(a), len(b)
    ranks = rankdata(np.concatenate([a, b]))
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    _, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - (counts ** 3 - counts).sum() / (n * (n - 1)))
    return float((u - n1 * n2 / 2) / np.sqrt(var)) if var > 0 else 0.0


@dataclass
class DataCopying(Detector):
    """Meehan et al.'s C_T: cell-wise Mann-Whitney z of sample vs held-out distances to the training set."""

    cells: int = 3  # dgm-eval's default (3 k-means cells)
    min_count: int = 5
    z_flag: float = -3.0
    seed: int = 0

    score_name = "d_train"
    higher_is_memorized = False
    needs_training_shape = True
    calibrate_on_heldout = False
    level = "set"

    def check(self) -> None:
        if not isinstance(self.cells, int) or isinstance(self.cells, bool) or self.cells < 1:
            raise MembenchError(f"copying: cells must be a positive integer, got {self.cells!r}")

    def c_t(self, x: np.ndarray, test: np.ndarray, train: np.ndarray, centers: np.ndarray
            ) -> tuple[float, np.ndarray, np.ndarray]:
        """(C_T, cell of each x, z per cell) for samples ``x`` against held-out ``test``."""
        from membench.detectors.knn import knn_l2

        def cell(v: np.ndarray) -> np.ndarray:
            return ((_flat(v)[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)

        dx, dt = knn_l2(x, train, k=1)[0][:, 0], knn_l2(test, train, k=1)[0][:, 0]
        cx, ct = cell(x), cell(test)
        z = np.full(len(centers), np.nan)
        weights = np.zeros(len(centers))
        for c in range(len(centers)):
            a, b = dx[cx == c], dt[ct == c]
            if len(a) >= self.min_count and len(b) >= self.min_count:
                z[c] = mann_whitney_z(a, b)
                weights[c] = len(b) / len(test)
        ok = ~np.isnan(z)
        value = float((z[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")
        return value, cx, z

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        from sklearn.cluster import KMeans

        from membench.detectors.knn import knn_l2
        from membench.store.records import Metric

        check_compatible(samples, train)
        ref, null = _split_heldout(train, "copying")
        tr = np.asarray(train.images, np.float32)
        k = min(self.cells, len(tr))
        centers = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit(_flat(tr)).cluster_centers_
        value, cells, z = self.c_t(samples, null, tr, centers)
        null_value, _, _ = self.c_t(ref, null, tr, centers)
        flags = np.nan_to_num(z[cells], nan=0.0) < self.z_flag
        d, idx = knn_l2(samples, tr, k=1)
        return DetectorOutput(scores=d[:, 0], flags=flags, nearest=idx[:, 0], extras={"cell": cells},
                              metrics={"ct": Metric(value, higher_is_memorized=False),
                                       "ct_null": Metric(null_value, higher_is_memorized=False)},
                              info={"cells": int(k), "z_by_cell": [None if np.isnan(v) else float(v) for v in z],
                                    "test_images": int(len(null)), "null": "the reference held-out images as samples",
                                    "space": "pixels"})


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0.0)


@dataclass
class MMDHeldout(Detector):
    """Kernel two-sample test: are the samples nearer (in MMD) the training set than held-out images?"""

    permutations: int = 200
    seed: int = 0

    score_name = "witness_train_minus_heldout"
    higher_is_memorized = True
    needs_training_shape = True
    calibrate_on_heldout = False
    level = "set"

    def check(self) -> None:
        if not isinstance(self.permutations, int) or isinstance(self.permutations, bool) or self.permutations < 1:
            raise MembenchError(f"mmd-heldout: permutations must be a positive integer, got {self.permutations!r}")

    def detect(self, samples: np.ndarray, train: Dataset, ctx: DetectorContext) -> DetectorOutput:
        from membench.detectors.knn import knn_l2
        from membench.store.records import Metric

        check_compatible(samples, train)
        ref, null = _split_heldout(train, "mmd-heldout")
        s, t, h, nl = _flat(samples), _flat(train.images), _flat(ref), _flat(null)
        pool = np.concatenate([t, h])
        d_pool = _sq_dists(pool, pool)
        bw = float(np.median(d_pool[np.triu_indices(len(pool), 1)])) or 1.0  # median heuristic on train + reference
        k_sp = np.exp(-_sq_dists(s, pool) / bw)  # (n_samples, n_pool)
        k_pp = np.exp(-d_pool / bw)
        n = len(t)

        def stat(lab: np.ndarray) -> float:
            a, b = lab, ~lab  # a: "training" side
            # T = MMD^2(S, B) - MMD^2(S, A) = 2 mean k(S, A) - 2 mean k(S, B) + mean k(B, B) - mean k(A, A)
            return float(2 * k_sp[:, a].mean() - 2 * k_sp[:, b].mean() + k_pp[np.ix_(b, b)].mean()
                         - k_pp[np.ix_(a, a)].mean())

        lab = np.zeros(len(pool), bool)
        lab[:n] = True
        observed = stat(lab)
        rng = np.random.default_rng(self.seed)
        perm = np.array([stat(rng.permutation(lab)) for _ in range(self.permutations)])
        p = float((1 + (perm >= observed).sum()) / (1 + self.permutations))
        witness = k_sp[:, :n].mean(1) - k_sp[:, n:].mean(1)
        k_null = np.exp(-_sq_dists(nl, pool) / bw)
        w_null = k_null[:, :n].mean(1) - k_null[:, n:].mean(1)
        # the witness of real held-out images is not centred at 0 (the two finite references
        # differ), so a sample is flagged above the null images' median witness
        cut = float(np.median(w_null))
        _, idx = knn_l2(samples, train.images, k=1)
        return DetectorOutput(scores=witness, flags=witness > cut, nearest=idx[:, 0], extras={},
                              metrics={"mmd_stat": Metric(observed, higher_is_memorized=True),
                                       "mmd_p": Metric(p, higher_is_memorized=False),
                                       "heldout_flagged": _wilson_metric(int((w_null > cut).sum()), len(nl),
                                                                         "null held-out images")},
                              info={"bandwidth_sq": bw, "permutations": self.permutations, "witness_cut": cut,
                                    "reference": f"first {n} held-out images", "space": "pixels"})
