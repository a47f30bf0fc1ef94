"""Model cards written beside every checkpoint the project trains or distils."""
from __future__ import annotations

import json
from typing import Any


REPRODUCIBILITY = ("Seeded; the same torch version on the same device reproduces the run (bitwise identity "
                   "across machines is not guaranteed by PyTorch).")


def render_card(title: str, summary: str, fields: list[tuple[str, str]], command: str,
                sections: list[tuple[str, str]] = (), config: dict[str, Any] | None = None) -> str:
    """The one model-card layout: a summary, a field/value table, extra sections, the rebuild
    command with the reproducibility caveat, and the configuration as JSON."""
    lines = [f"# {title}", "", summary, "", "| field | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in fields]
    for heading, text in sections:
        lines += ["", f"## {heading}", "", text.rstrip()]
    lines += ["", "## Rebuild", "", "```bash", command, "```", "", REPRODUCIBILITY]
    if config is not None:
        lines += ["", "## Configuration", "", "```json", json.dumps(config, indent=2, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def render(name: str, kind: str, command: str, record: dict[str, Any], weights_sha256: str,
           evaluation: dict[str, Any] | None = None, notes: str = "") -> str:
    """The card of a trained teacher or a distilled student."""
    fields = [
        ("training data", f"`{record.get('dataset')}` (fingerprint `{record.get('dataset_fingerprint')}`)"),
        ("steps", str(record.get("config", {}).get("steps"))),
        ("measured wall time", f"{record.get('wall_time_s')} s on {record.get('device')} ({record.get('threads', '?')} "
                               f"CPU threads), torch {record.get('torch')}"),
        ("final loss (mean of last 200 steps)", f"{record.get('final_loss', float('nan')):.5f}"),
        ("weights sha256", f"`{weights_sha256}`"),
    ]
    if evaluation:
        fields.append((f"memorized (l2ratio < 1/3, {evaluation['n']} samples, seed {evaluation['seed']})",
                       f"{evaluation['fraction']:.3f} (95% Wilson CI {evaluation['ci_low']:.3f}-{evaluation['ci_high']:.3f})"))
    summary = f"{kind}. Trained by membench on `{record.get('dataset', '?')}` ({record.get('n_train', '?')} images)."
    return render_card(name, summary, fields, command, [("Notes", notes)] if notes else [],
                       config=record.get("config", {}))
