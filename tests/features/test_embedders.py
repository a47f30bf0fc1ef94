"""Embedders: the real SSCD and CLIP code paths on small random models the tests build, the committed
digits embedder, explicit conversions, and the training-set embedding cache."""
import numpy as np
import pytest
import torch
from torch import nn

from membench.data import load_dataset
from membench.features import make_embedder
from membench.features import preprocess as pp
from membench.core.errors import MembenchError, UnavailableError, UnknownNameError


from tests.features.embedder_fixtures import tiny_clip, tiny_sscd, tiny_torchscript  # noqa: F401  (fixtures)


def test_channel_conversions_explicit():
    x = torch.rand(2, 1, 4, 4) * 2 - 1
    rgb = pp.to_channels(x, 3, "t")
    assert rgb.shape == (2, 3, 4, 4) and torch.equal(rgb[:, 0], rgb[:, 2])
    col = torch.rand(2, 3, 4, 4)
    gray = pp.to_channels(col, 1, "t")
    manual = 0.299 * col[:, 0] + 0.587 * col[:, 1] + 0.114 * col[:, 2]
    torch.testing.assert_close(gray[:, 0], manual)
    with pytest.raises(MembenchError, match="1 .gray. or 3 .RGB. channels, got 4"):
        pp.to_channels(torch.zeros(1, 4, 4, 4), 3, "t")
    assert pp.describe_channels(1, 3) == "gray replicated to RGB"
    assert "upsampled 8x8 -> short side 320" in pp.describe_resize(8, 8, 320)
    assert pp.resize_square(torch.zeros(1, 3, 10, 20), 8).shape == (1, 3, 8, 8)  # short side + centre crop


def test_unknown_embedder_and_option():
    with pytest.raises(UnknownNameError, match="did you mean sscd"):
        make_embedder("sscdd")
    with pytest.raises(MembenchError, match="unknown option"):
        make_embedder("pixels:bogus=1")
    with pytest.raises(MembenchError, match="unknown checkpoint"):
        make_embedder("sscd:checkpoint=nope")


def test_sscd_real_code_path_on_tiny_state_dict(tiny_sscd):
    from torchvision.models import resnet18

    ds = load_dataset("digits:n=16")
    emb = make_embedder("sscd", weights=str(tiny_sscd), size=64)
    vecs = emb.embed(ds.images[:5])
    # independent rebuild: torchvision ResNet, GeM (p=3) instead of average pooling, fc, L2 normalization;
    # preprocessing: replicate gray, bilinear to 64x64, [0, 1], ImageNet mean/std
    net = resnet18(num_classes=16)
    net.load_state_dict({k.removeprefix("backbone."): v for k, v in torch.load(tiny_sscd, weights_only=True).items()})
    net.avgpool = nn.Identity()
    x = torch.from_numpy(np.repeat(ds.images[:5], 3, axis=1))
    x = nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    x = ((x + 1) / 2 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    net.eval()
    with torch.no_grad():
        feats = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
        gem = feats.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3)
        expected = nn.functional.normalize(net.fc(gem), dim=1).numpy()
    np.testing.assert_allclose(vecs, expected, rtol=1e-4, atol=1e-5)
    assert emb.describe((1, 8, 8)) == "gray replicated to RGB; resized 8x8 -> 64x64 (upsampled, bilinear); ImageNet mean/std"
    assert emb.describe((3, 64, 64)) == "ImageNet mean/std"
    assert len(emb.weights_id()) == 64


def test_sscd_missing_corrupt_and_torchscript_weights(tmp_path, monkeypatch, tiny_torchscript):
    monkeypatch.setenv("MEMBENCH_CACHE", str(tmp_path / "cache"))
    emb = make_embedder("sscd")
    with pytest.raises(UnavailableError) as exc:
        emb.embed(np.zeros((1, 1, 8, 8), np.float32))
    msg = str(exc.value)
    assert "membench weights fetch sscd-disc-mixup" in msg and "sscd_disc_mixup.torchvision.pt" in msg
    assert str(tmp_path / "cache" / "weights") in msg and "\n" not in msg
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(MembenchError, match="not a torchvision-format SSCD state dict") as exc:
        make_embedder("sscd", weights=str(bad)).embed(np.zeros((1, 1, 8, 8), np.float32))
    assert not isinstance(exc.value, UnavailableError)
    with pytest.raises(MembenchError, match="TorchScript files are programs"):
        make_embedder("sscd", weights=str(tiny_torchscript))
    renamed = tmp_path / "renamed.pt"  # a TorchScript archive under another name: recognized and refused
    renamed.write_bytes(tiny_torchscript.read_bytes())
    with pytest.raises(MembenchError, match="is a TorchScript archive"):
        make_embedder("sscd", weights=str(renamed)).embed(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(MembenchError, match="sscd_disc_large is published only as TorchScript"):
        make_embedder("sscd:checkpoint=sscd_disc_large")


def test_clip_real_code_path_on_tiny_open_clip(tiny_clip):
    cfg, weights, model = tiny_clip
    ds = load_dataset("digits:n=16")
    emb = make_embedder("clip", arch=str(cfg), pretrained=str(weights))
    vecs = emb.embed(ds.images[:6])
    assert vecs.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    x = torch.from_numpy(np.repeat(ds.images[:6], 3, axis=1))
    x = nn.functional.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False)
    mean = torch.tensor(model.visual.preprocess_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.preprocess_cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.encode_image((((x + 1) / 2).clamp(0, 1) - mean) / std, normalize=True).numpy()
    np.testing.assert_allclose(vecs, expected, rtol=1e-4, atol=1e-5)  # the weights file was really loaded
    assert "upsampled 8x8 -> short side 32 (bicubic)" in emb.describe((1, 8, 8))


def test_clip_bad_inputs(tiny_clip, tmp_path):
    cfg, weights, _ = tiny_clip
    with pytest.raises(MembenchError, match="unknown open_clip architecture"):
        make_embedder("clip", arch="ViT-B-33").embed(np.zeros((1, 1, 8, 8), np.float32))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(MembenchError, match="cannot load weights"):
        make_embedder("clip", arch=str(cfg), pretrained=str(bad)).embed(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(UnavailableError, match="not found"):
        make_embedder("clip", arch=str(cfg), pretrained=str(tmp_path / "none.safetensors")).embed(
            np.zeros((1, 1, 8, 8), np.float32))
    # a hub tag that is not cached, offline (HF_HUB_OFFLINE=1 in conftest): unavailable, with the way out
    with pytest.raises(UnavailableError, match="pretrained=/path"):
        make_embedder("clip").embed(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(MembenchError, match="1 .gray. or 3 .RGB. channels"):
        make_embedder("clip", arch=str(cfg), pretrained=str(weights)).embed(np.zeros((1, 2, 8, 8), np.float32))


def test_digits_embedder_committed_weights():
    import hashlib
    from pathlib import Path

    from membench.features.digits import resolve_dir

    folder = resolve_dir("models/digits-embedder")
    sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert sha in (folder / "README.md").read_text()  # the model card names these exact weights
    ds = load_dataset("digits:n=64")
    emb = make_embedder("digits-embedder")
    vecs = emb.embed(ds.images)
    assert vecs.shape == (64, 128)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    # calibrated on 1x8x8 gray digits only: RGB or larger images are refused in one line, saying what to use
    rgb16 = np.repeat(np.kron(ds.images[:4], np.ones((1, 1, 2, 2), np.float32)), 3, axis=1)
    for bad in (rgb16, ds.images[:4].repeat(3, axis=1), rgb16[:, :1]):
        with pytest.raises(MembenchError, match=r"calibrated only on 1x8x8 gray digit images, got .*; use sscd or clip"):
            emb.embed(bad)
    assert Path(folder / "config.json").is_file()


def test_digits_embedder_missing_and_corrupt(tmp_path):
    with pytest.raises(UnavailableError, match="train_digits"):
        make_embedder("digits-embedder", weights=str(tmp_path)).embed(np.zeros((1, 1, 8, 8), np.float32))
    import shutil

    from membench.features.digits import resolve_dir

    shutil.copytree(resolve_dir("models/digits-embedder"), tmp_path / "e")
    (tmp_path / "e" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(MembenchError, match="cannot load"):
        make_embedder("digits-embedder", weights=str(tmp_path / "e")).embed(np.zeros((1, 1, 8, 8), np.float32))


def test_training_embeddings_cached(tmp_path):
    from membench.features.cache import cache_path, training_embeddings

    ds = load_dataset("digits:n=32")
    emb = make_embedder("pixels")
    first, cached = training_embeddings(emb, ds, tmp_path)
    assert not cached
    path = cache_path(tmp_path, ds, emb)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    again, cached = training_embeddings(emb, ds, tmp_path)
    assert cached and np.array_equal(first, again)
    other, cached = training_embeddings(make_embedder("pixels:center=false"), ds, tmp_path)
    assert not cached and not np.array_equal(first, other)  # another configuration, another entry
    path.write_bytes(b"corrupt")
    fixed, cached = training_embeddings(emb, ds, tmp_path)
    assert not cached and np.array_equal(fixed, first)


def test_training_embeddings_of_a_memmapped_set_are_written_whole_and_read_mapped(tmp_path, monkeypatch):
    import membench.features.cache as fc
    from membench.data.datasets import load_dataset as load

    imgs = np.random.default_rng(0).uniform(-1, 1, (50, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "train.npy", imgs)
    ds = load(str(tmp_path / "train.npy"))
    assert isinstance(ds.images, np.memmap)
    monkeypatch.setattr(fc, "CHUNK", 16)  # several chunks
    monkeypatch.setattr(fc, "IN_MEMORY", 0)  # read back mapped, as a large entry would be
    emb = make_embedder("pixels")
    calls = []
    real = emb.embed

    def failing(x, device="cpu"):
        calls.append(len(x))
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return real(x, device)

    monkeypatch.setattr(emb, "embed", failing)
    with pytest.raises(RuntimeError):
        fc.training_embeddings(emb, ds, tmp_path / "c")
    assert not list((tmp_path / "c" / "embeddings").iterdir())  # nothing half-written is left
    monkeypatch.setattr(emb, "embed", real)
    vecs, cached = fc.training_embeddings(emb, ds, tmp_path / "c")
    assert not cached and isinstance(vecs, np.memmap)
    np.testing.assert_array_equal(vecs, real(imgs))
