import numpy as np
import pytest
from PIL import Image

from membench.data import load_dataset
from membench.core.errors import MembenchError, UnknownNameError


def test_digits_subset_shape_range_and_split():
    ds = load_dataset("digits:n=64")
    assert ds.images.shape == (64, 1, 8, 8) and ds.images.dtype == np.float32
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert ds.heldout.shape == (300, 1, 8, 8)
    flat_train = {x.tobytes() for x in ds.images}
    assert len(flat_train) == 64  # de-duplicated
    assert not flat_train & {x.tobytes() for x in ds.heldout}  # held-out split is disjoint


def test_digits_subsets_nest_and_share_heldout():
    small, large = load_dataset("digits:n=64"), load_dataset("digits:n=512")
    np.testing.assert_array_equal(small.images, large.images[:64])
    np.testing.assert_array_equal(small.heldout, large.heldout)
    other = load_dataset("digits:n=64,seed=1")
    assert not np.array_equal(small.images, other.images)


def test_digits_is_seeded_and_fingerprinted():
    assert load_dataset("digits:n=32").fingerprint() == load_dataset("digits:n=32").fingerprint()
    assert load_dataset("digits:n=32").fingerprint() != load_dataset("digits:n=33").fingerprint()


@pytest.mark.parametrize("spec", ["digits:n=0", "digits:n=-3", "digits:n=100000", "digits:n=2.5", "digits:bogus=1"])
def test_digits_bad_options(spec):
    with pytest.raises(MembenchError):
        load_dataset(spec)


def test_unknown_dataset_suggests():
    with pytest.raises(UnknownNameError, match="digits"):
        load_dataset("digit")


def test_npz_dataset_uint8_and_heldout(tmp_path, rng):
    imgs = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=imgs, heldout=imgs[:3])
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.images.shape == (10, 1, 8, 8)
    np.testing.assert_allclose(ds.images[:, 0], imgs / 127.5 - 1, atol=1e-6)
    assert ds.heldout.shape == (3, 1, 8, 8)


def test_npz_nhwc_rgb(tmp_path, rng):
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
    assert load_dataset(str(tmp_path / "d.npz")).images.shape == (4, 3, 16, 16)


def test_image_folder(tmp_path, rng):
    arrays = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode="L").save(tmp_path / f"{i}.png")
    ds = load_dataset(str(tmp_path))
    np.testing.assert_allclose(ds.images[:, 0], arrays / 127.5 - 1, atol=1e-6)


def test_image_folder_mixed_sizes_rejected(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    Image.new("L", (9, 8)).save(tmp_path / "b.png")
    with pytest.raises(MembenchError, match="differ"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("content,match", [
    ({"images": np.zeros((0, 8, 8), np.uint8)}, "no images"),
    ({"images": np.full((2, 8, 8), np.nan, np.float32)}, "NaN"),
    ({"images": np.full((2, 8, 8), 3.0, np.float32)}, r"\[-1, 1\]"),
    ({"images": np.zeros((8,), np.float32)}, "shape"),
])
def test_bad_npz(tmp_path, content, match):
    np.savez(tmp_path / "bad.npz", **content)
    with pytest.raises(MembenchError, match=match):
        load_dataset(str(tmp_path / "bad.npz"))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(MembenchError, match="not found"):
        load_dataset(str(tmp_path / "nope.npz"))
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(MembenchError, match="cannot read"):
        load_dataset(str(tmp_path / "c.npz"))


def test_pickled_npz_refused(tmp_path):
    np.savez(tmp_path / "p.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(MembenchError):
        load_dataset(str(tmp_path / "p.npz"))


def test_npy_is_memory_mapped(tmp_path, rng):
    arr = rng.uniform(-1, 1, (20, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "big.npy", arr)
    ds = load_dataset(str(tmp_path / "big.npy"))
    assert isinstance(ds.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(ds.images), arr)


def test_fingerprint_is_computed_once_and_follows_the_images():
    ds = load_dataset("digits:n=32")
    first = ds.fingerprint()
    assert ds.fingerprint() == first  # memoized for the same array
    ds.images = ds.images[:16]  # a new array: recomputed, not the stale value
    assert ds.fingerprint() == load_dataset("digits:n=16").fingerprint() != first
