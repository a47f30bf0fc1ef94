"""Every format the loaders take, and the silent wrong answers of issue 13 (each failed before the fix)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from membench.core.errors import MembenchError
from membench.data import from_arrays, from_torch, load_dataset, load_images
from membench.data import validate

from .helpers import snapshot, write_png16


# ---------------------------------------------------------------- issue 13's defects


def test_nan_npy_training_set_is_refused(tmp_path):
    # before: memory-mapped without a scan, then 20/20 "memorized"
    arr = np.full((20, 1, 8, 8), np.nan, np.float32)
    np.save(tmp_path / "nan.npy", arr)
    with pytest.raises(MembenchError, match=r"nan.npy: 20 image\(s\) contain NaN"):
        load_dataset(str(tmp_path / "nan.npy"))


def test_one_inf_in_a_large_memmap_is_found_in_a_later_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "CHUNK_BYTES", 256 * 4)  # 4 images per chunk
    arr = np.zeros((40, 1, 8, 8), np.float32) - 0.5
    arr[37, 0, 3, 3] = np.inf
    np.save(tmp_path / "inf.npy", arr)
    with pytest.raises(MembenchError, match=r"1 image\(s\) contain NaN or infinite values \(first: image 37\)"):
        load_dataset(str(tmp_path / "inf.npy"))


def test_float_0_255_npy_samples_are_refused_like_the_npz(tmp_path, rng):
    # before: the .npz was refused but the memory-mapped .npy went through unchecked (0/10 for exact copies)
    pixels = rng.integers(0, 256, (10, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "s.npy", pixels)
    np.savez(tmp_path / "s.npz", images=pixels)
    for name in ("s.npy", "s.npz"):
        with pytest.raises(MembenchError, match=r"look like 0\.\.255 pixels: declare it with range=0\.\.255"):
            load_images(tmp_path / name)
    declared = load_images(f"{tmp_path / 's.npy'}:range=0..255")
    np.testing.assert_array_equal(declared, pixels.astype(np.uint8).astype(np.float32) / 127.5 - 1)


def test_float_in_0_1_is_ambiguous_and_declarable(tmp_path, rng):
    unit = rng.uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
    with pytest.raises(MembenchError, match=r"ambiguous; declare it with range=0\.\.1 or range=-1\.\.1"):
        from_arrays(unit)
    np.testing.assert_allclose(from_arrays(unit, range="0..1").images, unit * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(from_arrays(unit, range="-1..1").images, unit)


def test_16bit_png_read_at_full_depth(tmp_path):
    # before: convert("L") clipped them to 255: these three became one white image
    base = 1000 + np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000  # no pixel below 256
    for i in range(3):
        write_png16(tmp_path / f"{i}.png", base + i)  # differ by 1/65535 (identical at 8 bits too)
    ds = load_dataset(str(tmp_path))
    expected = (base[None] + np.arange(3)[:, None, None]).astype(np.float32) / np.float32(32767.5) - 1
    np.testing.assert_array_equal(ds.images[:, 0], expected)
    assert len({x.tobytes() for x in ds.images}) == 3


def test_16bit_color_png_keeps_16_bits(tmp_path, rng):
    arr = rng.integers(0, 65536, (2, 8, 8, 3)).astype(np.uint16)
    for i, a in enumerate(arr):
        write_png16(tmp_path / f"{i}.png", a)
    ds = load_dataset(str(tmp_path))
    np.testing.assert_array_equal(ds.images, arr.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(32767.5) - 1)


def _rgba(tmp_path, alpha_value: int):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, 100, 50, 255
    rgba[0, 0, 3] = alpha_value
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    return rgba


def test_rgba_with_transparency_is_refused_unless_a_rule_is_given(tmp_path):
    # before: alpha was dropped without a word
    rgba = _rgba(tmp_path, 0)
    with pytest.raises(MembenchError, match=r"a.png: 1.6% of its pixels are not opaque; say what alpha means"):
        load_dataset(str(tmp_path))
    dropped = load_dataset(f"{tmp_path}:alpha=drop")
    np.testing.assert_array_equal(dropped.images[0], rgba[..., :3].transpose(2, 0, 1) / np.float32(127.5) - 1)
    assert dropped.meta["image_notes"] == {"alpha_drop": 1}
    black = load_dataset(f"{tmp_path}:alpha=black").images[0]
    white = load_dataset(f"{tmp_path}:alpha=white").images[0]
    assert (black[:, 0, 0] == -1).all() and (white[:, 0, 0] == 1).all()
    np.testing.assert_array_equal(black[:, 1:], dropped.images[0][:, 1:])


def test_opaque_alpha_is_dropped_and_recorded(tmp_path):
    rgba = _rgba(tmp_path, 255)
    ds = load_dataset(str(tmp_path))
    assert ds.images.shape == (1, 3, 8, 8) and ds.meta["image_notes"] == {"opaque_alpha_dropped": 1}
    np.testing.assert_array_equal(ds.images[0], rgba[..., :3].transpose(2, 0, 1) / np.float32(127.5) - 1)


def test_palette_images_are_converted_by_their_palette(tmp_path):
    im = Image.new("P", (8, 8))
    im.putpalette([10, 20, 30, 200, 210, 220] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.save(tmp_path / "p.png")
    ds = load_dataset(str(tmp_path))
    assert ds.images.shape == (1, 3, 8, 8)
    np.testing.assert_array_equal(ds.images[0, :, 1, 1], np.array([200, 210, 220], np.float32) / np.float32(127.5) - 1)
    np.testing.assert_array_equal(ds.images[0, :, 0, 0], np.array([10, 20, 30], np.float32) / np.float32(127.5) - 1)


def test_palette_with_transparency_follows_the_alpha_rule(tmp_path):
    im = Image.new("P", (8, 8))
    im.putpalette([10, 20, 30, 200, 210, 220] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 1
    im.save(tmp_path / "p.png", transparency=1)
    with pytest.raises(MembenchError, match="not opaque"):
        load_dataset(str(tmp_path))


# ---------------------------------------------------------------- folders


def test_folder_is_recursive_and_class_subfolders_become_labels(tmp_path, rng):
    for cls, count in (("cat", 2), ("dog", 3)):
        for i in range(count):
            (tmp_path / cls / "deeper").mkdir(parents=True, exist_ok=True)
            where = tmp_path / cls / ("deeper" if i == 2 else "") / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(where)
    (tmp_path / ".hidden").mkdir()
    Image.new("L", (9, 9)).save(tmp_path / ".hidden" / "x.png")  # skipped
    (tmp_path / "notes.txt").write_text("not an image")  # ignored
    ds = load_dataset(str(tmp_path))
    assert ds.labels.tolist() == [0, 0, 1, 1, 1] and ds.meta["classes"] == ["cat", "dog"]
    assert ds.meta["files"][-1] == "dog/deeper/2.png" and ds.num_classes == 2
    assert ds.labels_fingerprint() is not None and ds.fingerprint() == load_dataset(f"{tmp_path}:labels=none").fingerprint()
    assert load_dataset(f"{tmp_path}:labels=none").labels is None


def test_folder_mixed_modes_name_the_first_offending_file(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    Image.new("L", (8, 8)).save(tmp_path / "b.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "c.png")
    with pytest.raises(MembenchError, match=r"c.png: 8x8, 3 channel\(s\), 8-bit differs from a.png"):
        load_dataset(str(tmp_path))
    ds = load_dataset(f"{tmp_path}:channels=3")
    assert ds.images.shape == (3, 3, 8, 8) and ds.meta["image_notes"] == {"converted_to_3_channels": 2}


def test_folder_rgb_to_gray_matches_pillow_luma(tmp_path, rng):
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "a.png")
    ours = load_dataset(f"{tmp_path}:channels=1").images[0, 0]
    pillow = np.asarray(Image.fromarray(rgb, "RGB").convert("L")).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(ours, pillow, atol=1 / 127.5 + 1e-6)  # Pillow rounds in fixed point


def test_folder_bilevel_and_jpeg(tmp_path, rng):
    Image.fromarray(rng.integers(0, 2, (8, 8), dtype=np.uint8).astype(bool)).save(tmp_path / "a.png")
    assert set(np.unique(load_dataset(str(tmp_path)).images)) <= {-1.0, 1.0}
    jpg = tmp_path / "j"
    jpg.mkdir()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(jpg / "a.jpg")
    assert load_dataset(str(jpg)).images.shape == (1, 3, 8, 8)


# ---------------------------------------------------------------- files and arrays


def test_npz_labels_and_declared_class_count(tmp_path, rng):
    imgs = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=imgs, labels=np.array([0, 1, 2, 0, 1, 2]), heldout=imgs[:2],
             heldout_labels=np.array([3, 0]))
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.labels.dtype == np.int64 and ds.num_classes == 4  # the largest label of either split + 1
    with pytest.raises(MembenchError, match=r"label 3 is out of range for 3 classes \(0\.\.2\)"):
        load_dataset(f"{tmp_path / 'd.npz'}:num_classes=3")


def test_npy_memmap_is_scanned_once_per_file_stamp(tmp_path, rng, monkeypatch):
    arr = rng.uniform(-1, 1, (30, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "big.npy", arr)
    calls = []
    real = np.isfinite

    def counting(x, *a, **k):
        calls.append(x.shape)
        return real(x, *a, **k)

    monkeypatch.setattr(validate.np, "isfinite", counting)
    first = load_dataset(str(tmp_path / "big.npy"))
    assert isinstance(first.images, np.memmap) and calls
    n = len(calls)
    load_dataset(str(tmp_path / "big.npy"))
    assert len(calls) == n  # remembered
    arr[3, 0, 0, 0] = np.nan
    np.save(tmp_path / "big.npy", arr)  # a new stamp: scanned again, and the NaN is found
    with pytest.raises(MembenchError, match="NaN"):
        load_dataset(str(tmp_path / "big.npy"))


def test_uint16_and_nhwc_npy(tmp_path, rng):
    arr = rng.integers(0, 65536, (3, 8, 8, 3)).astype(np.uint16)
    np.save(tmp_path / "u.npy", arr)
    ds = load_dataset(str(tmp_path / "u.npy"))
    np.testing.assert_array_equal(ds.images, arr.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(32767.5) - 1)


def test_from_arrays_accepts_tensors_and_lists(rng):
    import torch

    imgs = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    a = from_arrays(torch.from_numpy(imgs), labels=torch.tensor([0, 1, 0, 1, 1]), name="mine")
    b = from_arrays(imgs.tolist(), range="0..255")
    assert a.spec == "mine" and a.labels.tolist() == [0, 1, 0, 1, 1]
    assert a.fingerprint() == b.fingerprint()


def test_from_torch_dataset_of_pairs_and_pil(rng):
    import torch
    from torch.utils.data import TensorDataset

    x = torch.from_numpy(rng.uniform(0, 1, (6, 1, 8, 8)).astype(np.float32))  # what ToTensor gives
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(MembenchError, match="ambiguous"):
        from_torch(TensorDataset(x, y))
    ds = from_torch(TensorDataset(x, y), heldout=TensorDataset(x[:2], y[:2]), range="0..1", name="t")
    assert ds.images.shape == (6, 1, 8, 8) and ds.labels.tolist() == y.tolist() and ds.heldout.shape == (2, 1, 8, 8)

    class Pil(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)), i

    pil = from_torch(Pil())
    assert pil.images.shape == (3, 3, 8, 8) and pil.labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(pil.images[2], np.full((3, 8, 8), 80 / np.float32(127.5) - 1, np.float32))


def test_python_api_detect_takes_a_dataset_object(rng):
    import membench

    digits = load_dataset("digits:n=32")
    ds = from_arrays(((digits.images + 1) * 127.5).round().astype(np.uint8), name="my-digits")
    table, _ = membench.detect(ds.images[:4], train=ds, detectors="l2ratio")
    assert table["train_data"].tolist() == ["my-digits"] and table["memorized"].tolist() == [1.0]


# ---------------------------------------------------------------- Hugging Face save_to_disk folders


def _hf_images(rng, n):
    return [Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L") for _ in range(n)]


def test_hf_dataset_dict_with_class_labels(tmp_path, rng):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    full = datasets.Dataset.from_dict({"img": _hf_images(rng, 6), "label": [0, 1, 2, 0, 1, 2]}, features=feats)
    datasets.DatasetDict({"train": full.select(range(4)), "test": full.select(range(4, 6))}).save_to_disk(tmp_path / "hf")
    before = snapshot(tmp_path / "hf")
    ds = load_dataset(str(tmp_path / "hf"))
    assert snapshot(tmp_path / "hf") == before  # reading writes no cache file into the user's folder
    assert ds.images.shape == (4, 1, 8, 8) and ds.heldout.shape == (2, 1, 8, 8)
    assert ds.labels.tolist() == [0, 1, 2, 0] and ds.heldout_labels.tolist() == [1, 2] and ds.num_classes == 3
    assert ds.meta["classes"] == ["a", "b", "c"] and ds.meta["heldout"] == "test"
    assert load_dataset(f"{tmp_path / 'hf'}:heldout=none,label=none").heldout is None


def test_hf_single_split_arrays_and_ambiguities(tmp_path, rng):
    datasets = pytest.importorskip("datasets")
    arr = rng.uniform(-1, 1, (3, 8, 8)).astype(np.float32)
    feats = datasets.Features({"x": datasets.Array2D((8, 8), "float32"), "y": datasets.Image()})
    datasets.Dataset.from_dict({"x": arr, "y": _hf_images(rng, 3)}, features=feats).save_to_disk(tmp_path / "two")
    with pytest.raises(MembenchError, match=r"several image columns \(x, y\); choose one with image=NAME"):
        load_dataset(str(tmp_path / "two"))
    np.testing.assert_allclose(load_dataset(f"{tmp_path / 'two'}:image=x").images[:, 0], arr, atol=1e-7)
    assert load_dataset(f"{tmp_path / 'two'}:image=y").images.shape == (3, 1, 8, 8)


def test_hf_without_datasets_installed_is_one_line(tmp_path, monkeypatch):
    import builtins

    (tmp_path / "hf").mkdir()
    for name in ("dataset_info.json", "state.json"):
        (tmp_path / "hf" / name).write_text("{}")
    real = builtins.__import__

    def no_datasets(name, *a, **k):
        if name == "datasets":
            raise ImportError("no datasets")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(MembenchError, match=r"needs the optional extra: pip install 'membench\[hf\]'"):
        load_dataset(str(tmp_path / "hf"))
