"""Atomic file writes: every file t2igan writes (checkpoints, records, caches, tables, grids) goes to a
temporary file beside its target and is renamed over it only when complete, so a crash or a kill never
leaves half a file where a whole one is expected."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's own 0600 would hide results from others


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary path in `path`'s folder; when the block ends normally it replaces `path`, when it
    raises the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# What `atomic_path` names its temporary files: `.<target>.<mkstemp's 8 characters><suffix>`.
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>\.[a-z0-9.]*tmp)$")


def remove_temporaries(folder: str | os.PathLike, target: str | None = None) -> list[Path]:
    """Delete the temporary files that writes killed before their rename left in `folder` (of the file
    named `target` only, when given); only where no other process is writing them: a live write's
    temporary file looks the same. Returns them."""
    folder = Path(folder)
    found = []
    for path in folder.iterdir() if folder.is_dir() else []:
        match = _TEMPORARY.match(path.name)
        if path.is_file() and match and target in (None, match.group("target")):
            found.append(path)
    for path in found:
        path.unlink(missing_ok=True)
    return sorted(found)


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], fsync: bool = False) -> Path:
    """`write(handle)` into a binary file that appears at `path` only once complete (`fsync`: flushed to the
    disk before the rename, for files a resumed run depends on)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 2, sort_keys: bool = False) -> Path:
    """JSON with a trailing newline; values JSON cannot hold (paths, numpy scalars) are written as text."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=False, default=str) + "\n"
    return write_text_atomic(path, text)


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save, atomically and flushed to disk (checkpoints and encoder weights)."""
    import torch

    return write_atomic(path, lambda handle: torch.save(obj, handle), fsync=True)


def write_sidecar(path: str | os.PathLike, value: Any) -> Path:
    """A cache file's JSON sidecar (what it was built from, its sha256): sorted keys, so that two builds
    of the same file write the same bytes."""
    return write_json_atomic(path, value, indent=1, sort_keys=True)
