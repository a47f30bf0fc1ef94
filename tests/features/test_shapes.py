"""What each extractor does with 1x8x8, 3x32x32 and 3x64x64 images: the docs' tables are the code's,
and embedding tiny images of each shape does what the table says (tiny stand-in weights for sscd and clip)."""
import numpy as np
import pytest

from membench.core.errors import MembenchError
from membench.features import make_extractor
from membench.features.shapes import SHAPES, handling, table
from membench.weights.table import docs_table

from tests.conftest import REPO
from tests.features.embedder_fixtures import tiny_clip, tiny_sscd  # noqa: F401  (fixtures)


def test_docs_hold_the_generated_tables():
    doc = (REPO / "docs" / "detectors.md").read_text()
    assert table() in doc  # `python -m membench.features.shapes`
    assert docs_table() in doc  # `python -m membench.weights`


def test_each_extractor_on_each_shape(tiny_sscd, tiny_clip):  # noqa: F811
    cfg, weights, _ = tiny_clip
    built = {"pixels": make_extractor("pixels"), "digits-embedder": make_extractor("digits-embedder"),
             "digits-classifier": make_extractor("digits-classifier"),
             "sscd": make_extractor("sscd", weights=str(tiny_sscd), size=32),
             "clip": make_extractor("clip", arch=str(cfg), pretrained=str(weights))}
    rng = np.random.default_rng(0)
    dims = {}
    for name, ext in built.items():
        for shape in SHAPES:
            images = rng.uniform(-1, 1, (2, *shape)).astype(np.float32)
            if handling(name, shape).startswith("refused"):
                with pytest.raises(MembenchError, match="calibrated only on 1x8x8 gray digit images"):
                    ext.embed(images)
                continue
            out = ext.embed(images)
            assert out.shape[0] == 2 and np.isfinite(out).all()
            dims.setdefault(name, set()).add(out.shape[1])
    assert dims["pixels"] == {64, 3 * 32 * 32, 3 * 64 * 64}  # shape-bound: only same-shaped images compare
    assert dims["sscd"] == {16} and dims["clip"] == {32}  # converted: every shape lands in one space
    assert set(dims) == {"pixels", "sscd", "clip", "digits-embedder", "digits-classifier"}
