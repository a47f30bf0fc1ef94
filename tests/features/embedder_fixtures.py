"""Small random-initialized stand-ins for published embedder weights (an SSCD torchvision state dict,
a TorchScript file that must be refused, an open_clip model)."""
import json
import warnings

import pytest
import torch
from torch import nn


class TinyDescriptor(nn.Module):
    """A stand-in for an SSCD TorchScript file: conv + pooling + linear, L2-normalized 16-d output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.fc = nn.Linear(8, 16)

    def forward(self, x):
        h = torch.relu(self.conv(x)).mean((2, 3))
        return nn.functional.normalize(self.fc(h), dim=1)


@pytest.fixture(scope="session")
def tiny_sscd(tmp_path_factory):
    """An SSCD torchvision-format state dict as the publisher lays it out (``backbone.`` + torchvision
    ResNet keys), on ResNet-18 with 16-d descriptors to stay small; random weights."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(num_classes=16)
    path = tmp_path_factory.mktemp("sscd") / "tiny_sscd.torchvision.pt"
    torch.save({f"backbone.{k}": v for k, v in net.state_dict().items()}, path)
    return path


@pytest.fixture
def tiny_torchscript(tmp_path):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in new torch; loading is what we test
        module = torch.jit.script(TinyDescriptor().eval())
    path = tmp_path / "tiny_sscd.torchscript.pt"
    module.save(str(path))
    return path


TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8,
                                             "head_width": 32},
             "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_clip(tmp_path):
    """A random-initialized tiny open_clip model: its config file and its weights (safetensors)."""
    import open_clip
    from safetensors.torch import save_file

    cfg = tmp_path / "tinyclip-test.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    model = open_clip.create_model("tinyclip-test", pretrained=None)
    weights = tmp_path / "tinyclip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return cfg, weights, model.eval()
