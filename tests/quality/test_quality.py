"""Quality beside memorization (issue 5): extractors, caching, harness, leaderboard, CLI, bad input."""
import json
import pickle

import numpy as np
import pandas as pd
import pytest

import membench
import membench.api
from membench.cli import main
from membench.data import load_dataset
from membench.core.errors import MembenchError, UnavailableError
from membench.quality.evaluate import evaluate, summary
from membench.features.fidelity import resolve_extractor
from membench.quality.features import cached_features, extract
from membench.quality.metrics import MetricConfig

FAST = MetricConfig(kid_subsets=10)  # torch-fidelity's 100 subsets cost seconds; 10 suffice here


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- the committed classifier


def test_committed_classifier_card_matches_weights_and_accuracy(digits):
    """Recompute the card's numbers: weights hash and held-out accuracy."""
    import torch

    from membench.core.io import file_sha256
    from membench.features.digits_classifier import DEFAULT_DIR, load_classifier
    from membench.features.train_classifier import digit_labels

    card = (DEFAULT_DIR / "README.md").read_text()
    assert file_sha256(DEFAULT_DIR / "model.safetensors") in card
    model, cfg = load_classifier()
    with torch.no_grad():
        pred = model(torch.from_numpy(digits.heldout)).argmax(1).numpy()
    acc = float((pred == digit_labels(digits.heldout)).mean())
    assert acc == pytest.approx(cfg["training"]["heldout_accuracy"])
    assert acc >= 0.97
    assert f"{acc:.4f}" in card and "membench train-classifier" in card


def test_digit_labels_agree_with_sklearn(digits):
    from sklearn.datasets import load_digits

    from membench.features.train_classifier import digit_labels

    np.testing.assert_array_equal(digit_labels(digits.images), load_digits().target[digits.source_index])
    with pytest.raises(MembenchError, match="not digits"):
        digit_labels(np.zeros((1, 1, 8, 8), np.float32) + 0.123)


def test_train_classifier_writes_folder_atomically(tmp_path):
    from membench.features.train_classifier import build

    out = tmp_path / "clf"
    target, rec = build(out, epochs=1)
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert 0.0 <= rec["heldout_accuracy"] <= 1.0 and rec["n_train"] == 1497 and rec["n_heldout"] == 300
    with pytest.raises(MembenchError, match="already exists"):
        build(out, epochs=1)
    ext = resolve_extractor(f"digits:weights={out}")
    assert ext.identity() != resolve_extractor("digits").identity()


# ---------------------------------------------------------------- extractor + torch-fidelity


def test_pipeline_equals_torch_fidelity_calculate_metrics(digits, tmp_path):
    """Our cached input -> features -> metrics path gives calculate_metrics' numbers exactly."""
    import torch_fidelity

    from membench.features.fidelity import ensure_registered
    from membench.quality.features import torch_fidelity_dataset

    gen = digits.images[:150]
    rec = evaluate(gen, digits, "digits", FAST, references=["heldout"], cache_dir=tmp_path)
    tf_name = ensure_registered("digits-classifier")
    assert ensure_registered("digits-classifier") == tf_name  # once per process: a second call is a no-op
    ref = torch_fidelity.calculate_metrics(
        input1=torch_fidelity_dataset(gen), input2=torch_fidelity_dataset(digits.heldout), feature_extractor=tf_name,
        feature_extractor_weights_path=str(resolve_extractor("digits").extractor.folder()), cuda=False, fid=True, kid=True,
        prc=True, kid_subsets=10, kid_subset_size=150, cache=False, save_cpu_ram=True, verbose=False)
    m = rec["metrics"]["heldout"]
    assert m["fid"] == ref["frechet_inception_distance"]
    assert m["kid"] == ref["kernel_inception_distance_mean"] and m["kid_std"] == ref["kernel_inception_distance_std"]
    assert m["precision"]["value"] == ref["precision"] and m["recall"]["value"] == ref["recall"]


def test_fid_near_zero_against_itself_and_grows_with_noise(digits):
    ext = resolve_extractor("digits")
    from membench.quality.metrics import fid

    clean = digits.images[:500]
    base = extract(clean, ext)
    assert abs(fid(base, base)) < 1e-6
    noise = np.random.default_rng(0).normal(size=clean.shape).astype(np.float32)
    fids = [fid(extract(np.clip(clean + s * noise, -1, 1), ext), base) for s in (0.05, 0.2, 0.5, 1.0)]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert fids[0] < 1.0 < fids[-1]


def test_features_are_cached_by_content(digits, tmp_path, monkeypatch):
    ext = resolve_extractor("digits")
    first = cached_features(digits.heldout, ext, cache_dir=tmp_path)
    assert len(list((tmp_path / "quality" / "features").glob("*.npz"))) == 1
    import membench.quality.features as features

    monkeypatch.setattr(features, "extract", lambda *a, **k: pytest.fail("recomputed a cached reference"))
    np.testing.assert_array_equal(cached_features(digits.heldout, ext, cache_dir=tmp_path), first)


def test_digits_features_refuse_rgb_and_larger_images(digits):
    ext = resolve_extractor("digits")
    assert ext.problem((1, 8, 8)) is None
    for shape in ((3, 8, 8), (1, 16, 16), (3, 32, 32)):
        why = ext.problem(shape)
        assert "calibrated only on 1x8x8 gray digit images" in why and "use --quality-extractor inception-v3 or clip" in why
        with pytest.raises(MembenchError, match="calibrated only on 1x8x8"):
            evaluate(np.zeros((40, *shape), np.float32), digits, "digits")


def test_extractor_bad_names_and_missing_weights(tmp_path, monkeypatch):
    with pytest.raises(MembenchError, match="unknown quality extractor 'digit'; did you mean digits"):
        resolve_extractor("digit")
    with pytest.raises(MembenchError, match="unknown option"):
        resolve_extractor("digits:layer=3")
    with pytest.raises(UnavailableError, match="digits classifier weights not found"):
        resolve_extractor(f"digits:weights={tmp_path / 'nothing'}")
    monkeypatch.delenv("MEMBENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UnavailableError, match="inception-v3: weights .* are missing; run `membench weights fetch "
                                                "inception-v3`.*place it at .*weights=PATH"):
        resolve_extractor("inception-v3")
    with pytest.raises(UnavailableError, match="file not found"):
        resolve_extractor(f"inception-v3:weights={tmp_path / 'x.pth'}")


def test_corrupt_classifier_weights(tmp_path):
    import shutil

    from membench.features.digits_classifier import DEFAULT_DIR, load_classifier

    bad = tmp_path / "clf"
    shutil.copytree(DEFAULT_DIR, bad)
    (bad / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(MembenchError, match="cannot read safetensors"):
        load_classifier(bad)
    from safetensors.torch import load_file, save_file

    state = load_file(str(DEFAULT_DIR / "model.safetensors"))
    state["embed.weight"][0, 0] = float("nan")
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(MembenchError, match="NaN"):
        load_classifier(bad)
    del state["embed.weight"]
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(MembenchError, match="do not fit"):
        load_classifier(bad)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch EVIL_MARKER",))


def test_inception_weights_are_loaded_safely(tmp_path, monkeypatch):
    from membench.features.inception import load_inception_state

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": _Evil()}))
    with pytest.raises(MembenchError, match="safe loading refused"):
        load_inception_state(evil)
    assert not (tmp_path / "EVIL_MARKER").exists()


def test_inception_extractor_runs_on_gray_digits_with_local_weights(tmp_path, digits):
    """torch-fidelity's Inception network with (random) local weights, loaded without unpickling."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with pytest.MonkeyPatch.context() as mp:  # build a random-weight state dict of the right layout
        mp.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
        net = tfi.FeatureExtractorInceptionV3("probe", ["2048"])
    path = tmp_path / "inception.pth"
    torch.save(net.state_dict(), path)
    ext = resolve_extractor(f"inception-v3:weights={path}")
    assert ext.dim(digits.shape) == 2048
    feats = extract(digits.heldout[:1], ext)  # one image each: Inception is slow on a shared CPU
    assert feats.shape == (1, 2048) and np.isfinite(feats).all()
    rgb = extract(np.repeat(digits.heldout[:1], 3, axis=1), ext)
    np.testing.assert_allclose(feats, rgb, rtol=1e-5, atol=1e-5)  # gray is repeated to RGB
    # FID needs more images than Inception's 2048 dimensions: said, with the count
    with pytest.raises(MembenchError, match="FID needs at least 2049 images"):  # before extracting anything
        evaluate(digits.heldout[:3], digits, ext, MetricConfig(metrics=("fid",)), references=["heldout"],
                 cache_dir=tmp_path)


# ---------------------------------------------------------------- evaluate: references and bad input


def test_train_reference_rewards_memorization(digits, tmp_path):
    """Copies of training images look perfect against the training set, not against held-out."""
    copies = digits.images[np.random.default_rng(0).integers(0, len(digits), 600)]
    rec = summary(evaluate(copies, digits, "digits", FAST, cache_dir=tmp_path))
    assert rec["precision_train"] == 1.0 and rec["fid_train"] < rec["fid_heldout"]
    assert rec["quality_n_heldout"] == 300 and rec["quality_n_train"] == 1497


def test_evaluate_bad_input(digits, tmp_path):
    with pytest.raises(MembenchError, match=r"digits-classifier extractor cannot take 1x16x16 images: calibrated only"):
        evaluate(np.zeros((50, 1, 16, 16), np.float32), digits, "digits", cache_dir=tmp_path)
    bad = digits.images[:50].copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(MembenchError, match="1 image.*NaN"):
        evaluate(bad, digits, "digits", cache_dir=tmp_path)
    with pytest.raises(MembenchError, match="unknown quality reference|must be among"):
        evaluate(digits.images[:50], digits, "digits", references=["test"], cache_dir=tmp_path)
    small = load_dataset("digits:n=16")
    with pytest.raises(MembenchError, match="FID needs at least 33 images per set.*has 16"):
        evaluate(digits.images[:50], small, "digits", references=["train"], cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.json"))  # no metrics were cached for failed evaluations


# ---------------------------------------------------------------- harness + leaderboard + CLI


def test_run_puts_quality_beside_memorization(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    code, out, err = run_cli(capsys, "run", "--model", "tiny", "--n-samples", "40", "--results-dir", str(res), "--quiet")
    assert code == 0, err
    # the compact table: FID vs held-out beside memorization (precision/recall: leaderboard.csv and --format)
    assert "FID vs held-out (lower = better)" in out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert header.split()[-2:] == ["FID", "NFE"]
    files = list((res / "records" / "quality" / "tiny").glob("quality-*.json"))
    assert len(files) == 1 and len(list((res / "records" / "detection" / "tiny").glob("*.json"))) == 1
    rec = json.loads(files[0].read_text())
    board = pd.read_csv(res / "leaderboard.csv")
    row = board.iloc[0]
    assert row.sample_key == rec["samples"]["key"] and row.quality_extractor == "digits-classifier"
    held = rec["metrics"]["fid_heldout"]
    assert row.fid_heldout == pytest.approx(held["value"]) and held["higher_is_better"] is False
    assert rec["info"]["references"]["heldout"]["n"] == 300 and rec["samples"]["n"] == 40
    assert 0 <= row.precision_heldout_ci_low <= row.precision_heldout <= row.precision_heldout_ci_high <= 1
    # the tiny teacher has 16 training images: too few for FID against them (32-d features), said so
    assert np.isnan(row.fid_train) and "FID needs at least 33" in row.quality_note
    assert 0 <= row.recall_train <= 1
    # independent check of the stored numbers: recompute from the cached samples
    from membench.models.specs import resolve_model
    from membench.models.samples import get_samples

    samples = get_samples(resolve_model("tiny"), 40, 0, "cpu")
    again = evaluate(samples.images, load_dataset("digits:n=16"), "digits", strict=False, cache_dir=tmp_path / "c2")
    # (run used --device auto: CUDA features may differ from CPU ones in the last float32 bits)
    assert again["metrics"]["heldout"]["fid"] == pytest.approx(held["value"], rel=1e-3)
    assert "quality note" in (res / "leaderboard.md").read_text()


def test_quality_skipped_on_rerun_and_off_with_flag(tiny_teacher, tmp_path, capsys):
    res = tmp_path / "res"
    args = ["run", "--model", "tiny", "--n-samples", "40", "--results-dir", str(res), "--quiet"]
    assert run_cli(capsys, *args)[0] == 0
    qfile = next((res / "records" / "quality" / "tiny").glob("*.json"))
    stamp = qfile.stat().st_mtime_ns
    assert run_cli(capsys, *args)[0] == 0
    assert qfile.stat().st_mtime_ns == stamp
    res2 = tmp_path / "res2"
    code, out, _ = run_cli(capsys, "run", "--model", "tiny", "--n-samples", "40", "--results-dir", str(res2),
                           "--quiet", "--no-quality")
    assert code == 0 and not (res2 / "records" / "quality").exists()
    header, row = [line for line in out.splitlines() if line.startswith(("model", "tiny"))][:2]
    assert header.split()[-2:] == ["FID", "NFE"]  # the column is there, empty: no quality for this sample set
    assert row.split()[-1] == "7" and "]" == row.split()[-2][-1]  # NFE right after the interval: no FID
    assert pd.read_csv(res2 / "leaderboard.csv")["fid_heldout"].isna().all()


def test_run_with_unavailable_extractor_marks_rows(tiny_teacher, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MEMBENCH_INCEPTION_WEIGHTS", raising=False)
    res = tmp_path / "res"
    with pytest.warns(UserWarning, match="unavailable"):
        df = membench.run(models="tiny", n_samples=40, results_dir=res, quality_extractor="inception-v3")
    assert df["memorized"].notna().all() and df["fid_heldout"].isna().all()
    assert df["quality_note"].str.contains("unavailable: inception-v3: weights .* are missing").all()
    assert not (res / "records" / "quality").exists()
    code, _, err = run_cli(capsys, "run", "--model", "tiny", "--quality-extractor", "incepton", "--results-dir",
                           str(tmp_path / "r3"))
    assert code == 1 and "did you mean inception-v3" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r3").exists()


def test_quality_cli_on_sample_file(tmp_path, capsys, digits):
    samples = tmp_path / "s.npz"
    np.savez(samples, images=digits.images[:200])
    code, out, err = run_cli(capsys, "quality", "--samples", str(samples), "--train", "digits", "--kid-subsets", "5",
                             "--cache-dir", str(tmp_path / "c"))
    assert code == 0, err
    assert "heldout" in out and "train" in out and "rewards memorization" in out
    df, rec = membench.api.quality(samples, "digits", kid_subsets=5, cache_dir=tmp_path / "c")
    assert list(df["reference"]) == ["heldout", "train"]
    assert df.set_index("reference").loc["train", "precision"] == 1.0  # training images themselves


@pytest.mark.parametrize("argv,match", [
    (["--train", "digits:n=16", "--reference", "train"], "FID needs at least 33 images per set"),
    (["--train", "digits", "--metrics", "fid,isc"], "unknown quality metric"),
    (["--train", "digits", "--extractor", "inception-v3:weights=/nonexistent.pth"], "weights file not found"),
    (["--train", "digits", "--reference", "test"], "quality references must be among"),
])
def test_quality_cli_bad_input_one_line(tmp_path, capsys, digits, argv, match):
    samples = tmp_path / "s.npz"
    np.savez(samples, images=digits.images[:40])
    code, _, err = run_cli(capsys, "quality", "--samples", str(samples), *argv, "--cache-dir", str(tmp_path / "c"))
    assert code == 1 and match in err and len(err.strip().splitlines()) == 1


def test_quality_cli_wrong_shape(tmp_path, capsys):
    samples = tmp_path / "s.npz"
    np.savez(samples, images=np.zeros((40, 3, 16, 16), np.uint8))
    code, _, err = run_cli(capsys, "quality", "--samples", str(samples), "--train", "digits")
    assert code == 1 and "extractor cannot take 3x16x16 images" in err and len(err.strip().splitlines()) == 1


def test_run_quality_marks_images_the_extractor_cannot_take(tmp_path):
    from membench.data import Dataset
    from membench.measure import ImageSet, QualitySpec, run_quality

    rgb = Dataset(spec="rgb16", images=np.zeros((10, 3, 16, 16), np.float32))
    iset = ImageSet({"name": "m"}, {"key": "k", "n": 10, "seed": 0}, rgb, lambda: pytest.fail("sampled for nothing"))
    rec = run_quality(iset, QualitySpec("digits"), "cpu", tmp_path / "c")
    assert rec.status == "unavailable" and "inception-v3" in rec.reason and "cannot take 3x16x16" in rec.reason
