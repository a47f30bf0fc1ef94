import json

import pytest
import torch

from membench.models.checkpoints import WEIGHTS, checkpoint_hash, load_denoiser, read_meta
from membench.core.errors import MembenchError


def test_roundtrip_and_card(tiny_teacher):
    model, meta = load_denoiser(tiny_teacher)
    assert meta["role"] == "teacher" and meta["image_shape"] == [1, 8, 8]
    card = (tiny_teacher / "README.md").read_text()
    assert "membench train --model tiny" in card and "sha256" in card
    from membench.core.io import file_sha256

    assert file_sha256(tiny_teacher / WEIGHTS) in card
    x = torch.randn(2, 1, 8, 8)
    again, _ = load_denoiser(tiny_teacher)
    torch.testing.assert_close(model(x, 1.0), again(x, 1.0))


def test_training_is_seeded(tiny_teacher, tmp_path):
    from membench.training.train import train_from_registry

    other = train_from_registry("tiny", out=str(tmp_path / "again"), device="cpu", progress=False, eval_samples=0)
    a, _ = load_denoiser(tiny_teacher)
    b, _ = load_denoiser(other)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_refuses_to_overwrite_without_force(tiny_teacher):
    from membench.training.train import train_from_registry

    before = checkpoint_hash(tiny_teacher)
    with pytest.raises(MembenchError, match="already exists"):
        train_from_registry("tiny", device="cpu", progress=False, eval_samples=0)
    assert checkpoint_hash(tiny_teacher) == before


def test_missing_and_corrupt(tiny_teacher, tmp_path):
    with pytest.raises(MembenchError, match="not found"):
        load_denoiser(tmp_path / "nope")
    (tiny_teacher / WEIGHTS).write_bytes(b"\x00" * 100)
    with pytest.raises(MembenchError, match="cannot load"):
        load_denoiser(tiny_teacher)


def test_pickle_weights_are_never_loaded(tiny_teacher):
    # A pickle payload where the safetensors file should be: refused, never unpickled.
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    (tiny_teacher / WEIGHTS).unlink()
    (tiny_teacher / "unet" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(MembenchError, match="incomplete"):
        load_denoiser(tiny_teacher)


def test_bad_meta(tiny_teacher):
    (tiny_teacher / "membench.json").write_text("{not json")
    with pytest.raises(MembenchError, match="corrupt"):
        read_meta(tiny_teacher)
    (tiny_teacher / "membench.json").write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(MembenchError, match="unsupported"):
        read_meta(tiny_teacher)


def test_nan_weights_rejected(tiny_teacher):
    from safetensors.torch import load_file, save_file

    state = load_file(tiny_teacher / WEIGHTS)
    key = next(iter(state))
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, tiny_teacher / WEIGHTS)
    with pytest.raises(MembenchError, match="NaN"):
        load_denoiser(tiny_teacher)


def test_hash_tracks_content(tiny_teacher):
    h = checkpoint_hash(tiny_teacher)
    assert h == checkpoint_hash(tiny_teacher)
    meta = json.loads((tiny_teacher / "membench.json").read_text())
    meta["note"] = "x"
    (tiny_teacher / "membench.json").write_text(json.dumps(meta))
    assert checkpoint_hash(tiny_teacher) != h


@pytest.mark.parametrize("shape", [None, [1, 8], [1, 8, 0], "1x8x8", [1.0, 8, 8]])
def test_missing_or_bad_image_shape_is_one_line(tiny_teacher, shape):
    import json

    from membench.models.checkpoints import read_meta

    meta = json.loads((tiny_teacher / "membench.json").read_text())
    if shape is None:
        meta.pop("image_shape")
    else:
        meta["image_shape"] = shape
    (tiny_teacher / "membench.json").write_text(json.dumps(meta))
    with pytest.raises(MembenchError, match="'image_shape' must be"):
        read_meta(tiny_teacher)
