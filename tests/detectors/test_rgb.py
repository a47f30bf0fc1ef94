"""RGB and larger images (3x32x32, 3x64x64) through `detect` and `quality`: pixel detectors compare
same-shaped images only, embedding detectors convert and record it, digits-calibrated ones refuse."""
import numpy as np
import pandas as pd
import pytest

import membench
from membench.cli import main
from membench.core.errors import MembenchError

from tests.features.embedder_fixtures import tiny_clip, tiny_sscd  # noqa: F401  (fixtures)


@pytest.fixture
def rgb(tmp_path):
    """40 training and 40 held-out random RGB 32x32 images; samples: 10 training copies + 30 new images."""
    r = np.random.default_rng(0)
    train = r.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8)
    heldout = r.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8)
    samples = np.concatenate([train[:10], r.integers(0, 256, (30, 3, 32, 32), dtype=np.uint8)])
    np.savez(tmp_path / "train.npz", images=train, heldout=heldout)
    np.savez(tmp_path / "samples.npz", images=samples)
    np.savez(tmp_path / "samples64.npz", images=samples.repeat(2, axis=2).repeat(2, axis=3))  # 3x64x64
    return tmp_path


def test_detect_all_on_rgb_reports_refusals_and_runs_the_rest(rgb, capsys):
    import csv
    import io

    code = main(["detect", "--samples", str(rgb / "samples.npz"), "--train", str(rgb / "train.npz"),
                 "--detector", "all", "--quiet", "--format", "csv"])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = {r["detector"]: r for r in csv.DictReader(io.StringIO(out.out))}
    digits = rows["digits-sim"]
    assert digits["status"] == "unavailable" and digits["memorized"] == ""  # no 0.445 from a digits-only embedding
    assert "digits-embedder calibrated only on 1x8x8 gray digit images, got 3x32x32" in digits["note"]
    for name in ("l2ratio", "carlini", "embedsim"):  # same-shaped pixels: they run
        assert rows[name]["status"] == "ok"
    assert float(rows["l2ratio"]["memorized"]) == 0.25  # exactly the ten copies of 40
    sscd = rows["sscd"]
    assert sscd["status"] == "unavailable" and "membench weights fetch sscd-disc-mixup" in sscd["note"]


def test_pixel_detectors_refuse_a_shape_mismatch_in_one_line(rgb, capsys):
    for det in ("l2ratio", "carlini", "embedsim"):
        code = main(["detect", "--samples", str(rgb / "samples64.npz"), "--train", str(rgb / "train.npz"),
                     "--detector", det, "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and "3x64x64" in err[0].replace("(3, 64, 64)", "3x64x64"), err


def test_embedding_detector_converts_each_side_and_records_it(rgb, tiny_sscd):  # noqa: F811
    spec = f"sscd:weights={tiny_sscd},size=32"
    _, recs = membench.detect(rgb / "samples64.npz", str(rgb / "train.npz"), spec, device="cpu")
    info = recs[spec].info
    assert info["preprocessing"] == "resized 64x64 -> 32x32 (downsampled (antialiased), bilinear); ImageNet mean/std"
    assert info["train_preprocessing"] == "ImageNet mean/std"
    assert info["note"] == ("sscd: resized 64x64 -> 32x32 (downsampled (antialiased), bilinear); "
                            "training images 3x32x32: none")
    assert len(recs[spec].arrays["scores"]) == 40


def test_clip_similarity_and_quality_on_rgb(rgb, tiny_clip):  # noqa: F811
    cfg, weights, _ = tiny_clip
    spec = f"clip:arch={cfg},pretrained={weights}"
    df, recs = membench.detect(rgb / "samples64.npz", str(rgb / "train.npz"), f"{spec},threshold=0.999", device="cpu")
    rec = next(iter(recs.values()))
    scores = rec.arrays["scores"]
    assert np.all(scores[:10] > 0.999) and rec.arrays["nearest"][:10].tolist() == list(range(10))
    assert rec.info["note"] == ("clip: downsampled (antialiased) 64x64 -> short side 32 (bicubic); "
                                "training images 3x32x32: none")
    table, qrec = membench.api.quality(rgb / "samples.npz", str(rgb / "train.npz"), extractor=spec, device="cpu")
    assert np.isfinite(table["fid"]).all() and qrec.test["extractor"]["name"] == "clip"
    assert table.set_index("reference").loc["train", "fid"] < table.set_index("reference").loc["heldout", "fid"]
    with pytest.raises(MembenchError, match="digits-classifier extractor cannot take 3x32x32 images: calibrated"):
        membench.api.quality(rgb / "samples.npz", str(rgb / "train.npz"), device="cpu")
