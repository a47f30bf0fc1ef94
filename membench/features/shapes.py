"""What every feature extractor does with images of a given shape: the table in docs/detectors.md.

``python -m membench.features.shapes`` prints it (Markdown) for 1x8x8, 3x32x32 and 3x64x64
images and the extractors' default configurations; a test checks that the docs hold exactly
this table and that embedding tiny images of each shape does what it says.
"""
from __future__ import annotations

SHAPES = ((1, 8, 8), (3, 32, 32), (3, 64, 64))
DETECTORS_OF = {"pixels": "embedsim", "sscd": "sscd", "clip": "clip", "digits-embedder": "digits-sim",
                "digits-classifier": "quality (`digits`, the default)", "inception-v3": "quality (`--quality-extractor inception-v3`)"}


def handling(name: str, shape: tuple[int, int, int]) -> str:
    """One cell: the conversion the extractor records, or ``refused: <why>``."""
    from membench.features import make_extractor

    ext = make_extractor(name)
    why = ext.input_problem(shape)
    return f"refused: {why.split(';')[0]}" if why else ext.describe(shape)


def table(names: tuple[str, ...] = tuple(DETECTORS_OF)) -> str:
    head = ["extractor", "used by", *("x".join(map(str, s)) for s in SHAPES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [f"`{name}`", DETECTORS_OF.get(name, ""), *(handling(name, s) for s in SHAPES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
