"""`membench import` of every supported diffusers layout, and its refusals (one line, nothing written)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import membench
from membench.core.errors import MembenchError
from tests.models.byo_fixtures import bare_unet, cm_pipeline, ddpm_pipeline, tiny_unet


@pytest.fixture
def rgb_train(tmp_path):
    imgs = np.random.default_rng(0).uniform(-1, 1, (24, 3, 8, 8)).astype(np.float32)
    path = tmp_path / "rgb8.npz"
    np.savez(path, images=imgs[:16], heldout=imgs[16:])
    return str(path)


def test_every_kind_is_read_from_its_configs_and_samples(tmp_path, rgb_train, workspace):
    kinds = {
        "eps": (ddpm_pipeline(tmp_path / "eps"), {}, "epsilon", "ddim:steps=3"),
        "v": (bare_unet(tmp_path / "v", "DDIMScheduler", prediction_type="v_prediction",
                        beta_schedule="scaled_linear"), {}, "v_prediction", "heun:steps=2"),
        "x0": (ddpm_pipeline(tmp_path / "x0", "sample", "squaredcos_cap_v2"), {}, "sample", "euler:steps=2"),
        "edm": (bare_unet(tmp_path / "edm", "EDMEulerScheduler"), {}, "edm", "heun:steps=2"),
        "cmedm": (bare_unet(tmp_path / "cmedm", None), {"parameterization": "cm_edm"}, "cm_edm", "euler:steps=2"),
        "cm": (cm_pipeline(tmp_path / "cm"), {"teacher": "eps", "method": "cd"}, "consistency", None),
    }
    for name, (folder, extra, param, sampler) in kinds.items():
        info = membench.import_model(folder, name=name, train=rgb_train, sampler=sampler, **extra)
        assert (info["parameterization"], info["resolution"], info["channels"]) == (param, "8x8", 3), name
    assert "declared" in membench.import_model(tmp_path / "cmedm", name="cmedm2", train=rgb_train,
                                               parameterization="cm_edm")["parameterization_from"]
    board = membench.run(models=",".join(kinds), detectors="l2ratio", n_samples=4, device="cpu", quality=False)
    assert set(board["model"]) == set(kinds) and (board["status"] == "ok").all()
    assert dict(zip(board["model"], board["nfe"]))["cm"] == 1


def test_the_same_folder_under_another_parameterization_is_another_checkpoint(tmp_path, rgb_train):
    from membench.models.checkpoints import checkpoint_hash
    from membench.models.specs import resolve_model

    folder = bare_unet(tmp_path / "u", None)
    membench.import_model(folder, name="a", train=rgb_train, parameterization="cm_edm")
    membench.import_model(folder, name="b", train=rgb_train, parameterization="edm")
    assert checkpoint_hash(resolve_model("a")) != checkpoint_hash(resolve_model("b"))


def _latent(path):
    ddpm_pipeline(path)
    index = json.loads((path / "model_index.json").read_text())
    (path / "model_index.json").write_text(json.dumps({**index, "vae": ["diffusers", "AutoencoderKL"]}))
    return path


def _pickle_only(path):
    bare_unet(path, "DDPMScheduler")
    (path / "unet" / "diffusion_pytorch_model.safetensors").rename(path / "unet" / "diffusion_pytorch_model.bin")
    return path


def _sde(path):
    bare_unet(path, None)
    (path / "scheduler").mkdir()
    (path / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "ScoreSdeVeScheduler"}))
    return path


def _sigmoid(path):
    bare_unet(path, None)
    (path / "scheduler").mkdir()
    (path / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "DDPMScheduler", "beta_schedule": "sigmoid"}))
    return path


@pytest.mark.parametrize("make,kwargs,message", [
    (_sde, {}, "scheduler 'ScoreSdeVeScheduler' is not supported"),
    (_sigmoid, {}, "beta_schedule 'sigmoid' is not supported"),
    (_latent, {}, "latent and text-conditioned pipelines are not supported"),
    (_pickle_only, {}, "only pickle weights"),
    (lambda p: bare_unet(p, None), {}, "declare it: --parameterization"),
    (lambda p: bare_unet(p, None), {"parameterization": "epsilon"}, "needs a DDPM-family scheduler config"),
    (lambda p: ddpm_pipeline(p, size=16), {}, "makes [3, 16, 16] images"),
    (lambda p: ddpm_pipeline(p, channels=1), {}, "makes [1, 8, 8] images"),
    (lambda p: cm_pipeline(p, num_classes=4), {}, "has no labels"),
    (lambda p: ddpm_pipeline(p), {"sampler": "consistency:steps=1"}, "consistency sampling needs a consistency model"),
    (lambda p: cm_pipeline(p), {"sampler": "ddim:steps=3"}, "ddim runs on DDPM-family models"),
    (lambda p: ddpm_pipeline(p), {"teacher": "nope"}, "nope"),
    (lambda p: p, {}, "no such folder, and not a hub id"),
])
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, rgb_train, workspace, make, kwargs, message):
    folder = make(tmp_path / "ckpt")
    with pytest.raises(MembenchError) as err:
        membench.import_model(folder if folder.exists() else tmp_path / "missing", name="x", train=rgb_train, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (workspace / "registry").exists()


def test_class_labels_out_of_range_and_hub_offline(tmp_path, workspace, monkeypatch):
    folder = cm_pipeline(tmp_path / "cm", channels=1, num_classes=5)  # digits has labels 0..9
    with pytest.raises(MembenchError, match="outside the model's 5 classes"):
        membench.import_model(folder, name="x", train="digits:n=32")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MembenchError, match="HF_HUB_OFFLINE=1"):
        membench.import_model("openai/diffusers-cd_imagenet64_l2", name="x", train="digits:n=32")
    assert not (workspace / "registry").exists()


def test_cli_import_prints_what_it_found(tmp_path, rgb_train, capsys):
    from membench.cli import main

    folder = ddpm_pipeline(tmp_path / "eps", "v_prediction")
    assert main(["import", str(folder), "--name", "mine", "--train", rgb_train]) == 0
    out = capsys.readouterr().out
    assert "parameterization v_prediction" in out and "resolution 8x8, channels 3, classes 0" in out
    assert "sampler ddim:steps=50" in out
    assert main(["import", str(folder), "--name", "mine", "--train", "digits:n=32"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "makes [3, 8, 8] images" in err[0]
