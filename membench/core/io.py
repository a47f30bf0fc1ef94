"""Write-to-temp-then-rename helpers, so an interrupted write never leaves a half file.

``mkstemp``/``mkdtemp`` create their files 0600/0700 whatever the umask; the helpers here set
the modes a plain ``open``/``mkdir`` would have given (0644/0755 under umask 022), so results,
caches and checkpoints are readable by the user's group when the umask says so.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _read_umask() -> int:
    # Linux shows the umask in /proc without changing it. Elsewhere it can only be read by
    # setting it and restoring it, which is process-wide: a thread creating a file in between
    # would get the temporary mask. Hence read once, at import (normally single-threaded), and
    # cached: a umask changed later in the process is not seen.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK  # what open(path, "w") would create
DIR_MODE = 0o777 & ~UMASK  # what mkdir would create


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _temp_prefix(path: Path) -> str:
    # The writer's pid is in the name: a later writer of the same target removes what a killed one left.
    return f".{path.name}.{os.getpid()}-"


def sweep_stale_temps(path: Path) -> None:
    """Remove temporaries of ``path`` left by writers that no longer run (killed mid-write)."""
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*-*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed``, but with a fixed time stamp in the zip: the same arrays give the
    same bytes (a rerun's output is byte-identical to the first run's; the digest checks hold)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


@contextmanager
def atomic_npy(path: str | Path, shape: tuple[int, ...], dtype: Any) -> Iterator[np.ndarray]:
    """Yield a writable memory-mapped ``.npy`` of ``shape``; it appears at ``path`` whole, on success only.

    For arrays filled in chunks that need not fit in memory (training-set features)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield arr
        arr.flush()
        del arr
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_tagged_json(path: Path, fmt: str, what: str) -> dict[str, Any]:
    """A JSON object whose ``format`` key must equal ``fmt``; one-line MembenchError otherwise."""
    from membench.core.errors import MembenchError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MembenchError(f"{path}: corrupt {what} ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise MembenchError(f"{path}: unsupported {what} format {found!r} (expected {fmt!r})")
    return data


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def hash_file_into(h: Any, path: str | Path) -> None:
    """Feed a file's bytes into the hash object ``h`` in 1 MiB blocks (large weights stay out of memory)."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def file_stamp(path: str | Path) -> tuple[str, int, int]:
    """(resolved path, size, mtime): changes when a file is replaced in place."""
    p = Path(path)
    st = p.stat()
    return str(p.resolve()), st.st_size, st.st_mtime_ns


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, memoized on its stamp so that large weights are hashed once per process."""
    import hashlib

    key = file_stamp(path)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        hash_file_into(h, path)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def json_digest(parts: Any, length: int = 12) -> str:
    """A short, stable content key of JSON-able ``parts`` (configurations, provenance)."""
    import hashlib

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:length]


def array_digest(arr: np.ndarray) -> str:
    """Content key of an array: its dtype, shape and bytes."""
    import hashlib

    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:20]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _apply_umask(root: Path) -> None:
    """Give a finished folder's tree the modes of a plain mkdir/open: mkdtemp made it 0700 and
    some writers (safetensors) create 0600 files. Executable files stay executable."""
    root.chmod(DIR_MODE)
    for p in root.rglob("*"):
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(DIR_MODE)
        else:
            p.chmod(FILE_MODE | (0o111 & ~UMASK if p.stat().st_mode & 0o100 else 0))


@contextmanager
def atomic_directory(target: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``target`` in one rename.

    An exception (or Ctrl-C) inside the block removes the temporary folder and leaves
    ``target`` as it was.
    """
    target = Path(target)
    if target.exists() and not force:
        from membench.core.errors import MembenchError

        raise MembenchError(f"{target} already exists (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix(target), suffix=".tmp"))
    try:
        yield tmp
        _apply_umask(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
