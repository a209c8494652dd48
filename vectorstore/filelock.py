"""An advisory lock between processes (flock). The kernel drops it when a holder dies, even by kill -9."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path | str, *, exclusive: bool = True) -> Iterator[None]:
    """Hold a lock on `path`: a file (created if needed) or an existing directory (locking a
    directory leaves nothing behind in it). Where the file cannot be created (a read-only
    directory) or flock does not exist, it goes on unlocked: the guarded write fails on its own,
    with a clear error."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one process at a time is assumed
        fcntl = None
    fd = None
    if fcntl is not None:
        try:
            if os.path.isdir(path):
                fd = os.open(str(path), os.O_RDONLY)
            else:
                fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
