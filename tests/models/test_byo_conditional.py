"""Class-conditional models: one label per sample index, the same for every model and batch, stored
with the samples and the records; same-class nearest-neighbour search needs labels."""
from __future__ import annotations

import numpy as np
import pytest

import membench
from membench.core.errors import MembenchError
from tests.models.byo_fixtures import cm_pipeline


def test_labels_are_per_index_stored_and_shared(tmp_path, workspace):
    from membench.models.denoisers.labels import labels_for
    from membench.models.samples import get_samples
    from membench.models.specs import resolve_model
    from membench.store.records import iter_records

    membench.import_model(cm_pipeline(tmp_path / "a", channels=1, num_classes=10), name="cm-a", train="digits:n=40")
    membench.import_model(cm_pipeline(tmp_path / "b", channels=1, num_classes=10, levels=18), name="cm-b",
                          train="digits:n=40", teacher="cm-a", method="cd")
    a = get_samples(resolve_model("cm-a"), 12, seed=3, device="cpu")
    b = get_samples(resolve_model("cm-b"), 5, seed=3, device="cpu")
    np.testing.assert_array_equal(a.labels, labels_for(3, np.arange(12), 10))
    np.testing.assert_array_equal(a.labels[:5], b.labels)  # same label for sample i, whatever the model or count
    assert len(set(a.labels.tolist())) > 3  # uniform, not constant
    fixed = get_samples(resolve_model("cm-a:labels=7"), 4, seed=3, device="cpu")
    assert (fixed.labels == 7).all() and not np.array_equal(fixed.images, a.images[:4])
    res = tmp_path / "res"
    membench.run(models="cm-a,cm-b", detectors="l2ratio,l2ratio:same_class=true", n_samples=12, seed=3,
                 device="cpu", quality=False, results_dir=res)
    recs = list(iter_records(res, "detection"))
    assert len(recs) == 4
    for rec in recs:
        arrays = rec.load_arrays()
        np.testing.assert_array_equal(arrays["class_labels"], labels_for(3, arrays["noise_index"], 10))
        if rec.test["config"]["same_class"]:  # the matched training image has the sample's class
            from membench.data import load_dataset

            train = load_dataset("digits:n=40")
            np.testing.assert_array_equal(train.labels[arrays["nearest"]], arrays["class_labels"])


def test_labels_out_of_range_and_same_class_without_labels_are_one_line(tmp_path, workspace):
    from membench.models.samples import get_samples
    from membench.models.specs import resolve_model

    membench.import_model(cm_pipeline(tmp_path / "a", channels=1, num_classes=10), name="cm-a", train="digits:n=40")
    with pytest.raises(MembenchError, match="labels out of range: the model has 10 classes"):
        get_samples(resolve_model("cm-a:labels=12"), 3, seed=0, device="cpu")
    samples = tmp_path / "s.npz"
    np.savez(samples, images=np.random.default_rng(0).uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32))
    with pytest.raises(MembenchError, match="same_class=true needs the samples' class labels"):
        membench.detect(str(samples), train="digits:n=40", detectors="l2ratio:same_class=true")
    membench.detect(str(samples), train="digits:n=40", detectors="l2ratio")  # ordinary search needs none
