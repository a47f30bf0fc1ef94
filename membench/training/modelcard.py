"""Model cards written beside every checkpoint the project trains or distils."""
from __future__ import annotations

import json
from typing import Any


def render(name: str, kind: str, command: str, record: dict[str, Any], weights_sha256: str,
           evaluation: dict[str, Any] | None = None, notes: str = "") -> str:
    cfg = json.dumps(record.get("config", {}), indent=2, sort_keys=True)
    lines = [
        f"# {name}",
        "",
        f"{kind}. Trained by membench on `{record.get('dataset', '?')}` "
        f"({record.get('n_train', '?')} images).",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| training data | `{record.get('dataset')}` (fingerprint `{record.get('dataset_fingerprint')}`) |",
        f"| steps | {record.get('config', {}).get('steps')} |",
        f"| measured wall time | {record.get('wall_time_s')} s on {record.get('device')} ({record.get('threads', '?')} CPU threads), torch {record.get('torch')} |",
        f"| final loss (mean of last 200 steps) | {record.get('final_loss', float('nan')):.5f} |",
        f"| weights sha256 | `{weights_sha256}` |",
    ]
    if evaluation:
        lines.append(
            f"| memorized (l2ratio < 1/3, {evaluation['n']} samples, seed {evaluation['seed']}) | "
            f"{evaluation['fraction']:.3f} (95% Wilson CI {evaluation['ci_low']:.3f}-{evaluation['ci_high']:.3f}) |"
        )
    lines += [
        "",
        "## Rebuild",
        "",
        "```bash",
        command,
        "```",
        "",
        "Training is seeded; on the same torch version and device the rebuild reproduces the run "
        "(bitwise identity across machines is not guaranteed by PyTorch).",
        "",
        "## Configuration",
        "",
        "```json",
        cfg,
        "```",
    ]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
