"""Bad data files through the CLI, in-process: each case exits non-zero with exactly one line on
stderr naming the problem and the file, no traceback, and leaves the workspace byte-identical.

The loader part of issue 13's bad-input matrix (the ``reliability`` branch adds the rest)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from membench.cli import main

from .helpers import snapshot

GOOD_TRAIN = "digits:n=16"


def _npy(arr) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        np.save(d / "bad.npy", arr)
        return d / "bad.npy"
    return make


def _npz(**arrays) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        np.savez(d / "bad.npz", **arrays)
        return d / "bad.npz"
    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def _folder(*images: tuple[str, Callable[[], Image.Image]]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        folder = d / "imgs"
        for rel, build in images:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            build().save(folder / rel)
        folder.mkdir(exist_ok=True)
        return folder
    return make


def _with(make: Callable[[Path], Path], options: str) -> Callable[[Path], str]:
    return lambda d: f"{make(d)}:{options}"


def _hf_two_image_columns(d: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    img = Image.new("L", (8, 8))
    feats = datasets.Features({"a": datasets.Image(), "b": datasets.Image()})
    datasets.Dataset.from_dict({"a": [img, img], "b": [img, img]}, features=feats).save_to_disk(d / "hf")
    return d / "hf"


def _hf_two_heldout_splits(d: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    img = Image.new("L", (8, 8))
    one = datasets.Dataset.from_dict({"img": [img, img]}, features=datasets.Features({"img": datasets.Image()}))
    datasets.DatasetDict({"train": one, "test": one, "validation": one}).save_to_disk(d / "hfdd")
    return d / "hfdd"


def _rgb_samples(d: Path) -> Path:
    np.savez(d / "rgb.npz", images=np.zeros((4, 8, 8, 3), np.uint8))
    return d / "rgb.npz"


L8 = lambda: Image.new("L", (8, 8), 100)  # noqa: E731
RGB8 = lambda: Image.new("RGB", (8, 8), (1, 2, 3))  # noqa: E731
RGBA_HALF = lambda: Image.new("RGBA", (8, 8), (1, 2, 3, 128))  # noqa: E731

nan = np.full((4, 1, 8, 8), np.nan, np.float32)
pix255 = np.random.default_rng(0).integers(0, 256, (4, 1, 8, 8)).astype(np.float32)
unit = np.random.default_rng(0).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32)
ok_u8 = np.zeros((6, 8, 8), np.uint8)

# (id, role of the bad file: train | samples, how to make it, what stderr must say)
CASES = [
    ("npy-nan-train", "train", _npy(nan), r"4 image\(s\) contain NaN"),
    ("npy-float255-samples", "samples", _npy(pix255), r"look like 0\.\.255 pixels: declare it with range=0\.\.255"),
    ("npy-float01-samples", "samples", _npy(unit), r"ambiguous; declare it with range=0\.\.1 or range=-1\.\.1"),
    ("npz-inf-train", "train", _npz(images=np.where(np.eye(8) > 0, np.inf, 0).astype(np.float32)[None].repeat(2, 0)),
     r"contain NaN or infinite"),
    ("npy-int32-no-range", "train", _npy(np.zeros((4, 8, 8), np.int32)), r"int32 images have no default range"),
    ("npy-bool", "train", _npy(np.zeros((4, 8, 8), bool)), r"unsupported dtype bool"),
    ("npy-4-channels", "train", _npy(np.zeros((4, 4, 8, 8), np.uint8)), r"images need 1 or 3 channels"),
    ("npy-2d", "samples", _npy(np.zeros((4, 64), np.uint8)), r"expected images of shape"),
    ("npy-ambiguous-layout", "train", _npy(np.zeros((4, 3, 8, 3), np.uint8)), r"ambiguous \(channels first or last\?\)"),
    ("npy-empty", "samples", _npy(np.zeros((0, 8, 8), np.uint8)), r"no images"),
    ("npy-outside-declared-range", "train", _with(_npy(pix255), "range=0..1"),
     r"values \[0, 255\] lie outside the declared range 0\.\.1"),
    ("npy-unknown-range", "train", _with(_npy(ok_u8), "range=0..9"), r"unknown range '0\.\.9'"),
    ("npy-unknown-option", "samples", _with(_npy(ok_u8), "bogus=1"), r"unknown option 'bogus' for a \.npy file"),
    ("npz-label-out-of-range", "train", _with(_npz(images=ok_u8, labels=np.array([0, 1, 2, 3, 4, 12])), "num_classes=10"),
     r"label 12 is out of range for 10 classes"),
    ("npz-negative-label", "train", _npz(images=ok_u8, labels=np.array([0, 1, -1, 0, 1, 0])), r"label -1 is negative"),
    ("npz-float-labels", "train", _npz(images=ok_u8, labels=np.zeros(6, np.float32)), r"labels must be integers"),
    ("npz-labels-wrong-length", "train", _npz(images=ok_u8, labels=np.zeros(5, np.int64)), r"5 labels for 6 images"),
    ("npz-no-images-array", "train", _npz(a=ok_u8, b=ok_u8), r"no array named 'images' among a, b"),
    ("npz-is-a-png", "train", _bytes("bad.npz", b"\x89PNG\r\n\x1a\n" + bytes(40)), r"its contents are not a zip archive"),
    ("npy-is-text", "samples", _bytes("bad.npy", b"1,2,3\n4,5,6\n"), r"its contents are not a numpy array"),
    ("unsupported-suffix", "train", _bytes("bad.csv", b"1,2,3\n"), r"unsupported dataset file \.csv"),
    ("folder-rgba-transparent", "train", _folder(("a.png", L8), ("b.png", RGBA_HALF)),
     r"b\.png: 100\.0% of its pixels are not opaque"),
    ("folder-mixed-sizes", "samples", _folder(("a.png", L8), ("b.png", lambda: Image.new("L", (9, 8)))),
     r"b\.png: 9x8, 1 channel\(s\), 8-bit differs from a\.png"),
    ("folder-mixed-modes", "train", _folder(("a.png", L8), ("b.png", RGB8)), r"b\.png: 8x8, 3 channel\(s\)"),
    ("folder-corrupt-png", "samples", _folder(("a.png", L8)), r"not a readable image"),
    ("folder-top-and-classes", "train", _folder(("a.png", L8), ("cls/b.png", L8)),
     r"images lie both at the top \(a\.png\) and in sub-folders"),
    ("folder-no-images", "samples", _folder(), r"no image files"),
    ("folder-cmyk", "train", _folder(("a.jpg", lambda: Image.new("CMYK", (8, 8)))), r"image mode CMYK is not supported"),
    ("folder-unknown-alpha-rule", "train", _with(_folder(("a.png", RGBA_HALF)), "alpha=grey"), r"unknown alpha rule 'grey'"),
    ("hf-two-image-columns", "train", _hf_two_image_columns, r"several image columns \(a, b\); choose one with image=NAME"),
    ("hf-two-heldout-splits", "train", _hf_two_heldout_splits, r"both 'test' and 'validation' could be the held-out split"),
    ("channel-mismatch", "samples", _rgb_samples,
     r"samples have shape \(3, 8, 8\) but .*digits\S* ha\w+ \(1, 8, 8\)|cannot take 3x8x8 images: calibrated only on 1x8x8"),
]


def _corrupt(case_id: str, path: Path) -> None:
    if case_id == "folder-corrupt-png":
        (path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 4)


# every case through `detect`; the sample-file cases through `quality` too (its training set is read
# by the same loader as detect's)
# (A case that still writes something before its error would be listed here as a strict xfail.)
LEAKS: dict[tuple[str, str], str] = {}
PARAMS = [pytest.param(cmd, *case, id=f"{cmd}-{case[0]}",
                       marks=[pytest.mark.xfail(strict=True, reason=LEAKS[cmd, case[0]])] if (cmd, case[0]) in LEAKS else [])
          for case in CASES for cmd in (("detect", "quality") if case[1] == "samples" else ("detect",))]


@pytest.mark.parametrize("command,case_id,role,make,expected", PARAMS)
def test_bad_data_file_is_one_line_and_writes_nothing(command, case_id, role, make, expected, tmp_path, workspace,
                                                      capsys):
    data = tmp_path / "data"
    data.mkdir()
    bad = make(data)
    _corrupt(case_id, Path(str(bad).split(":")[0]))
    good = data / "good.npz"
    np.savez(good, images=np.zeros((4, 8, 8), np.uint8))
    train, samples = (str(bad), str(good)) if role == "train" else (GOOD_TRAIN, str(bad))
    argv = [command, "--samples", samples, "--train", train, "--device", "cpu", "--quiet"]
    if command == "detect":
        argv += ["--results-dir", str(workspace / "results"), "--per-sample", str(workspace / "scores.csv")]
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "results").mkdir()
    (workspace / "results" / "keep.txt").write_text("an earlier run's file")
    before = snapshot(workspace)
    capsys.readouterr()  # what making the input printed
    code = main(argv)
    out, err = capsys.readouterr()
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err + out
    assert lines[0].startswith("membench: error: ")
    import re

    assert re.search(expected, lines[0]), lines[0]
    if case_id != "channel-mismatch":  # that line names both shapes instead
        assert Path(str(bad).split(":")[0]).name in lines[0] or str(bad) in lines[0], lines[0]
    assert snapshot(workspace) == before


def test_run_with_a_model_whose_training_set_is_bad(tmp_path, workspace, capsys):
    """`run` loads each model's training set before sampling: a NaN .npy is the one line, nothing written."""
    from membench.models.specs import resolve_model

    np.save(tmp_path / "nan.npy", nan)
    teacher = resolve_model("teacher")
    models = workspace / "registry" / "models"
    models.mkdir(parents=True)
    (models / "badtrain.toml").write_text(
        f'role = "teacher"\ncheckpoint = "{Path(teacher.checkpoint).resolve()}"\nsampler = "{teacher.sampler}"\n'
        f'dataset = "{tmp_path / "nan.npy"}"\n')
    before = snapshot(workspace)
    capsys.readouterr()
    code = main(["run", "--model", "badtrain", "--n-samples", "4", "--no-quality", "--device", "cpu", "--quiet"])
    out, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in err + out
    assert err.strip().count("\n") == 0 and "nan.npy: 4 image(s) contain NaN" in err, err
    assert snapshot(workspace) == before


def test_detectors_that_cannot_take_the_samples_claim_nothing(tmp_path, workspace):
    """RGB samples against gray digits: every pixel and embedding detector is refused before any lock
    or record is written; with `all` they are unavailable rows and only the detectors that ran
    (the model-free set tests cannot run either: they compare pixels) leave files."""
    import membench

    rgb = np.random.default_rng(0).uniform(-1, 1, (8, 3, 8, 8)).astype(np.float32)
    results = workspace / "results"
    from membench.core.errors import UnavailableError

    with pytest.raises(UnavailableError, match=r"samples have shape \(3, 8, 8\)"):
        membench.detect(rgb, GOOD_TRAIN, "carlini", device="cpu", results_dir=results)
    assert not results.exists()
    board, records = membench.detect(rgb, GOOD_TRAIN, "all", device="cpu", results_dir=results)
    pixel = {"l2ratio", "carlini", "copying", "nn-heldout", "mmd-heldout", "digits-sim"}
    rows = board.set_index("detector")
    assert pixel <= set(rows.index) and (rows.loc[sorted(pixel), "status"] == "unavailable").all()
    locks = {p.name.split("-")[0] for p in (results / ".locks").rglob("*.lock")} if (results / ".locks").exists() else set()
    assert not locks & {"l2ratio", "carlini", "copying", "digits"}, locks
