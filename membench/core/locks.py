"""Advisory file locks, so concurrent ``membench run``s never compute the same thing twice.

``flock`` locks are released by the kernel when their holder exits or crashes, so a
killed run leaves no stale lock behind (unlike an O_EXCL marker file). Lock files are
left in place: deleting a lock file another process may have just opened would let
two holders in at once.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

try:  # POSIX; elsewhere locking degrades to a no-op (single-process use stays correct)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")


@contextmanager
def file_lock(path: str | Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if needed); yields whether it was acquired.

    With ``blocking=False`` and the lock held elsewhere, yields False at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, so a group can share a results folder
    try:
        if fcntl is None:
            yield True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious human
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def claim_each(items: Iterable[T], lock_path: Callable[[T], Path], is_done: Callable[[T], bool]) -> Iterator[T]:
    """Yield the items that still need doing, each while holding its lock.

    Items another process is working on are deferred to the end (so concurrent runs work
    on different items in parallel), then waited for; an item that became done while
    waiting is not yielded. The consumer must finish an item before asking for the next.
    """
    deferred: list[T] = []
    for item in items:
        if is_done(item):
            continue
        with file_lock(lock_path(item), blocking=False) as got:
            if got:
                if not is_done(item):
                    yield item
                continue
        deferred.append(item)
    for item in deferred:
        with file_lock(lock_path(item), blocking=True):
            if not is_done(item):
                yield item
