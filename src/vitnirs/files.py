"""Atomic folder replacement, shared by stores, checkpoints and portable exports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["replace_dir"]


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``; an existing ``final`` is swapped out, then removed.

    ``tmp`` must be on the same file system as ``final`` (a sibling), so each rename is atomic:
    a reader sees the old folder or the new one, never a half-written one.
    """
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f".old_{final.name}.{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
