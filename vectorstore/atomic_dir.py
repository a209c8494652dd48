"""Publishing a directory built elsewhere (the converted model, its ONNX exports) in one atomic step."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def install_dir(staging: Path, target: Path, is_complete: Callable[[Path], bool]) -> None:
    """Rename the finished ``staging`` directory to ``target``.

    A directory rename is atomic but cannot replace a non-empty directory, so an outdated or broken
    ``target`` is first moved aside and deleted afterwards. ``is_complete(target)`` says whether a
    directory already holds what ``staging`` holds (another process may have finished first).
    """
    fsync_tree(staging)  # data must be on disk before the rename makes it visible
    if is_complete(target):
        return  # a concurrent run finished first; its files equal ours
    old = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "previous")
    try:
        os.rename(staging, target)
    except OSError:
        # Another process installed one between our check and our rename; keep theirs if it is
        # the one we would have written.
        if not is_complete(target):
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    for directory in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
