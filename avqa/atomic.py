"""Atomic outputs: every file or directory a stage writes goes to a temporary sibling path and is renamed into
place only when complete, so a job killed mid-write never leaves something that Snakemake or the next stage
would take for a finished output. A killed job (SIGKILL: no cleanup code runs) leaves `.NAME.tmp-PID-*` or
`.NAME.old-PID-*` beside the output; nothing ever reads those, and the next write of the same output removes the
ones whose process is gone.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success rename it to `final` (replacing an old one)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if final.exists():
        # Move the old output aside first so there is never a moment with a half-replaced store.
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # another user's live process
        return True
    return True


def remove_leftovers(final: Path) -> list[Path]:
    """Remove the temporaries a killed writer of `final` left behind (their process is gone); returns them."""
    removed = []
    for kind in ("tmp", "old"):
        for path in final.parent.glob(f".{final.name}.{kind}-*"):
            pid = path.name[len(f".{final.name}.{kind}-"):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                _remove(path)
                removed.append(path)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
