"""What ``membench weights list`` and ``membench weights fetch`` print."""
from __future__ import annotations


def list_command() -> int:
    import pandas as pd

    from membench.weights.table import entries, status

    rows = [{"name": w.name, "for": w.used_by, "file": str(w.path()), "status": status(w),
             "size": f"{w.size:,} B" if w.size else "not published", "checksum": w.check_kind,
             "expected": w.expected or "-", "url": w.url} for w in entries()]
    print(pd.DataFrame(rows).to_markdown(index=False) if rows else "no weights entries")
    return 0


def fetch_command(name: str, allow_unverified: bool = False) -> int:
    from membench.weights.fetch import fetch

    got = fetch(name, allow_unverified=allow_unverified)
    what = "downloaded" if got.downloaded else "already present"
    check = "no published checksum: UNVERIFIED" if got.verified == "none published" else f"verified: {got.verified}"
    print(f"{name}: {what} {got.path} ({got.size:,} bytes, sha256 {got.sha256}; {check})")
    return 0
