"""Synthetic digit-like images for training the digits embedder on data disjoint from every split.

The built-in digits (UCI optdigits, as bundled by scikit-learn) are 32x32 binary bitmaps
reduced to 8x8 by counting set pixels in 4x4 blocks (values 0..16). Here characters of
Pillow's bundled font (letters, digits, symbols; random size, stroke width, rotation,
shear, aspect and position), sometimes with extra random strokes, are rendered the same
way. No sklearn digit is ever used, so the embedder's training data is disjoint from every
training set and from the held-out split that ``membench validate`` uses as novel images.
"""
from __future__ import annotations

import string

import numpy as np

CHARS = string.digits + string.ascii_letters + "#$%&*+<=>?@"


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # bundled with Pillow >= 10.1: same font on every machine


def render_one(rng: np.random.Generator, fonts: dict[int, object]) -> np.ndarray:
    from PIL import Image, ImageDraw

    size = int(rng.integers(28, 48))
    font = fonts.setdefault(size, _font(size))
    canvas = Image.new("L", (72, 72), 0)
    draw = ImageDraw.Draw(canvas)
    ch = CHARS[int(rng.integers(len(CHARS)))]
    draw.text((12, 6), ch, fill=255, font=font, stroke_width=int(rng.integers(1, 6)), stroke_fill=255)
    for _ in range(int(rng.choice([0, 0, 0, 1, 2]))):  # extra strokes make more distinct shapes
        pts = [tuple(rng.integers(8, 64, 2).tolist()) for _ in range(int(rng.integers(2, 4)))]
        draw.line(pts, fill=255, width=int(rng.integers(2, 6)))
    angle = float(rng.uniform(-20, 20))
    shear = float(rng.uniform(-0.3, 0.3))
    canvas = canvas.rotate(angle, resample=Image.BILINEAR).transform(
        canvas.size, Image.AFFINE, (1, shear, -shear * 36, 0, 1, 0), resample=Image.BILINEAR)
    box = canvas.getbbox()
    if box is None:
        return render_one(rng, fonts)
    glyph = canvas.crop(box)
    gw, gh = glyph.size
    h = int(rng.integers(24, 33))
    w = int(np.clip(round(gw / gh * h * rng.uniform(0.8, 1.4)), 4, 30))
    glyph = glyph.resize((w, h), Image.BILINEAR)
    out = Image.new("L", (32, 32), 0)
    x0 = int(np.clip((32 - w) // 2 + rng.integers(-2, 3), 0, 32 - w))
    y0 = int(np.clip((32 - h) // 2 + rng.integers(-1, 2), 0, 32 - h))
    out.paste(glyph, (x0, y0))
    bits = (np.asarray(out) > 127).astype(np.float32)
    counts = bits.reshape(8, 4, 8, 4).sum(axis=(1, 3))  # 0..16, as optdigits
    return counts / 8.0 - 1.0


def render(n: int, seed: int = 0) -> np.ndarray:
    """``n`` glyph images (n, 1, 8, 8) float32 in [-1, 1], deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    fonts: dict[int, object] = {}
    return np.stack([render_one(rng, fonts) for _ in range(n)])[:, None].astype(np.float32)
