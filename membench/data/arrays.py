"""Training sets made in Python: arrays (``from_arrays``) and torch datasets (``from_torch``).

Both end in ``validate.build``, the same checks as files: a float array in [0, 1] (what
torchvision's ``ToTensor`` gives) is refused unless ``range="0..1"`` says so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from membench.core.errors import MembenchError
from membench.data import validate


def from_arrays(images: Any, labels: Any = None, heldout: Any = None, heldout_labels: Any = None, *,
                name: str = "arrays", num_classes: int | None = None, range: str | None = None,
                layout: str | None = None):
    """A ``Dataset`` from arrays of shape (N, H, W), (N, C, H, W) or (N, H, W, C) (numpy, torch
    tensors or nested lists); ``range``/``layout`` declare what the arrays alone leave ambiguous
    (``"0..1"``, ``"0..255"``, ``"0..65535"``, ``"-1..1"``; ``"nchw"``, ``"nhwc"``)."""
    if not isinstance(name, str) or not name.strip():
        raise MembenchError(f"from_arrays: name must be a non-empty string, got {name!r}")
    return validate.build(name, _numpy(images, name), heldout=_numpy(heldout, f"{name} heldout"),
                          labels=_numpy(labels, f"{name} labels"), heldout_labels=_numpy(heldout_labels, name),
                          num_classes=num_classes, value_range=range, layout=layout, meta={"source": "arrays"})


def _numpy(x: Any, what: str) -> Any:
    if x is None or isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return x


def from_torch(dataset: Any, heldout: Any = None, *, name: str = "torch", num_classes: int | None = None,
               range: str | None = None, layout: str | None = None, alpha: str = "refuse",
               channels: int | None = None):
    """A ``Dataset`` from a map-style torch dataset (``len`` and ``[i]``) whose items are an image or
    an (image, label) pair; images are tensors/arrays (one layout for all) or Pillow images (read
    under the image-file rules, ``alpha``/``channels`` as for folders)."""
    images, labels, pil = _items(dataset, name, alpha, channels)
    held, held_labels, _ = _items(heldout, f"{name} heldout", alpha, channels) if heldout is not None else (None, None, 0)
    if pil:
        layout = "nchw"  # Pillow images were read as (H, W, C) and transposed here
    if held is not None and (labels is None) != (held_labels is None):
        raise MembenchError(f"{name}: the training items {'have' if labels is not None else 'lack'} labels, "
                            "the held-out items do not match")
    return validate.build(name, images, heldout=held, labels=labels, heldout_labels=held_labels,
                          num_classes=num_classes, value_range=range, layout=layout,
                          meta={"source": f"torch dataset {type(dataset).__name__}"})


def _items(dataset: Any, name: str, alpha: str, channels: int | None) -> tuple[np.ndarray, np.ndarray | None, bool]:
    from membench.data.images import pil_to_array

    try:
        n = len(dataset)
    except TypeError:
        raise MembenchError(f"{name}: needs a map-style dataset (len and [i]), got {type(dataset).__name__}") from None
    if n == 0:
        raise MembenchError(f"{name}: no images")
    images, labels, pil = [], [], None
    for i in range(n):
        item = dataset[i]
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise MembenchError(f"{name}: item {i} has {len(item)} parts; expected an image or (image, label)")
            image, label = item
        else:
            image, label = item, None
        if i > 0 and (label is not None) != bool(labels):
            raise MembenchError(f"{name}: item {i} {'has' if label is not None else 'lacks'} a label, item 0 does not")
        if label is not None:
            labels.append(_label(label, name, i))
        is_pil = hasattr(image, "getbands")
        if pil is None:
            pil = is_pil
        elif pil != is_pil:
            raise MembenchError(f"{name}: item {i} is {'a Pillow image' if is_pil else 'an array'}, item 0 is not")
        if is_pil:
            arr = pil_to_array(image, f"{name} item {i}", alpha, channels)
        else:
            arr = np.asarray(_numpy(image, name))
        if images and (arr.shape, arr.dtype) != (images[0].shape, images[0].dtype):
            raise MembenchError(f"{name}: item {i} is {arr.dtype} {arr.shape}, item 0 {images[0].dtype} {images[0].shape}")
        images.append(arr)
    stack = np.stack(images)
    if pil:
        stack = stack.transpose(0, 3, 1, 2)  # images were read as (H, W, C)
    return stack, (np.array(labels) if labels else None), bool(pil)


def _label(label: Any, name: str, i: int) -> Any:
    value = _numpy(label, name)
    value = np.asarray(value)
    if value.ndim != 0 or value.dtype.kind not in "iu":
        raise MembenchError(f"{name}: item {i} has label {label!r}; labels must be single integers")
    return int(value)
