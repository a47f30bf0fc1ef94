"""The weights table: one TOML entry per published file, validated when read.

An entry (``<registry folder>/weights/<name>.toml``)::

    description = "torch-fidelity's Inception-v3 (FID features)"
    url = "https://github.com/.../weights-inception-2015-12-05-6726825d.pth"
    file = "weights/weights-inception-2015-12-05-6726825d.pth"   # under $MEMBENCH_CACHE
    sha256_prefix = "6726825d"      # or sha256 = "<64 hex>"; neither: no checksum is published
    checksum_source = "where the checksum comes from"
    size = 605143316                # bytes, when the publisher gives it (optional)
    license = "..."
    used_by = "inception-v3"        # the extractor that reads it

Only what the publisher gives is recorded: a full SHA-256, or the prefix its file name
carries (then only that prefix is checked, and ``membench weights list`` says so), or
nothing (then ``fetch`` refuses unless told to accept an unverified file).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from membench.core.errors import MembenchError, UnavailableError

HEX = re.compile(r"^[0-9a-f]+$")
KEYS = {"description", "url", "file", "sha256", "sha256_prefix", "checksum_source", "size", "license", "used_by",
        "note"}


@dataclass(frozen=True)
class WeightsFile:
    name: str
    url: str
    file: str  # relative to the cache folder
    sha256: str = ""  # the full digest, when published
    sha256_prefix: str = ""  # only a prefix is published (e.g. in the file name)
    checksum_source: str = ""
    size: int | None = None
    license: str = ""
    used_by: str = ""
    description: str = ""
    note: str = ""
    entry_path: str = ""

    @property
    def expected(self) -> str:
        """The published digest or prefix ('' when none is published)."""
        return self.sha256 or self.sha256_prefix

    @property
    def check_kind(self) -> str:
        if self.sha256:
            return "sha256"
        return f"sha256 prefix ({len(self.sha256_prefix) * 4} bits)" if self.sha256_prefix else "none published"

    def path(self, cache_dir: Path | None = None) -> Path:
        from membench.core.workspace import default_cache_dir

        return (Path(cache_dir) if cache_dir else default_cache_dir()) / self.file

    def matches(self, digest: str) -> bool:
        """Whether a file's full sha256 ``digest`` agrees with what the publisher gives."""
        if self.sha256:
            return digest == self.sha256
        if self.sha256_prefix:
            return digest.startswith(self.sha256_prefix)
        return False

    def place_hint(self, cache_dir: Path | None = None) -> str:
        return f"download {self.url} and place it at {self.path(cache_dir)}"


def _check(name: str, data: dict[str, Any]) -> WeightsFile:
    where = data.get("_entry_path", name)
    extra = set(data) - KEYS - {"name", "_entry_path"}
    if extra:
        raise MembenchError(f"weights entry {where}: unknown key(s) {sorted(extra)}; known: {sorted(KEYS)}")
    url, file = data.get("url"), data.get("file")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+/\S+$", url):
        raise MembenchError(f"weights entry {where}: url must be an http(s) URL of a file, got {url!r}")
    if not isinstance(file, str) or not file or PurePosixPath(file).is_absolute() or ".." in PurePosixPath(file).parts:
        raise MembenchError(f"weights entry {where}: file must be a relative path under the cache, got {file!r}")
    full, prefix = str(data.get("sha256", "")).lower(), str(data.get("sha256_prefix", "")).lower()
    if full and (len(full) != 64 or not HEX.match(full)):
        raise MembenchError(f"weights entry {where}: sha256 must be 64 hex digits, got {full!r}")
    if prefix and (full or not 8 <= len(prefix) < 64 or not HEX.match(prefix)):
        raise MembenchError(f"weights entry {where}: sha256_prefix must be 8 to 63 hex digits, without sha256")
    size = data.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise MembenchError(f"weights entry {where}: size must be a positive integer (bytes), got {size!r}")
    text = {k: str(data.get(k, "")) for k in ("checksum_source", "license", "used_by", "description", "note")}
    return WeightsFile(name=name, url=url, file=file, sha256=full, sha256_prefix=prefix, size=size,
                       entry_path=str(data.get("_entry_path", "")), **text)


def entry(name: str) -> WeightsFile:
    """The weights entry ``name``; unknown names and bad entries are one line."""
    from membench.weights import WEIGHTS

    return _check(name, WEIGHTS.read_entry(name))


def entries() -> list[WeightsFile]:
    from membench.weights import WEIGHTS

    return [entry(n) for n in WEIGHTS.names()]


def describe(name: str) -> str:
    """``membench list weights``: one line per entry."""
    w = entry(name)
    return f"{w.description or w.url} (for {w.used_by or '?'}; checksum: {w.check_kind})"


def status(w: WeightsFile, cache_dir: Path | None = None) -> str:
    """``present`` (checksum agrees), ``present, unverified`` (none published), ``MISMATCH`` or ``absent``."""
    from membench.core.io import file_sha256

    p = w.path(cache_dir)
    if not p.is_file():
        return "absent"
    if not w.expected:
        return "present, unverified (no published checksum)"
    return "present" if w.matches(file_sha256(p)) else "MISMATCH (not the published file)"


def local_file(name: str, who: str, option: str) -> Path:
    """The cached file of entry ``name`` for the extractor ``who``, checked against the table.

    Missing: UnavailableError saying how to get it (``membench weights fetch``, or which file
    to place where, or ``option`` for a file elsewhere). Present but not the published file
    (its checksum disagrees): MembenchError, since using it would give other numbers silently.
    """
    from membench.core.io import file_sha256

    w = entry(name)
    p = w.path()
    if not p.is_file():
        raise UnavailableError(f"{who}: weights {p} are missing; run `membench weights fetch {name}` "
                               f"(or {w.place_hint()}; or pass {option})")
    if w.expected and not w.matches(file_sha256(p)):
        raise MembenchError(f"{who}: {p} does not match the published checksum of {name} ({w.check_kind} "
                            f"{w.expected}); delete it and run `membench weights fetch {name}`")
    return p


def docs_table() -> str:
    """The Markdown table of docs/detectors.md (``python -m membench.weights``): the built-in entries."""
    rows = ["| name | for | URL | file under `$MEMBENCH_CACHE` | size | checksum checked |", "|---|---|---|---|---|---|"]
    for w in entries():
        if not w.entry_path.startswith(str(_builtin_dir())):
            continue
        size = f"{w.size:,} B" if w.size else "not published"
        check = f"{w.check_kind}: `{w.expected}`" if w.expected else "none published"
        rows.append(f"| `{w.name}` | `{w.used_by}` | {w.url} | `{w.file}` | {size} | {check} |")
    return "\n".join(rows)


def _builtin_dir() -> Path:
    from membench.core.workspace import builtin_registry_dir

    return builtin_registry_dir() / "weights"
