"""Where things live on disk: the cache root and each dataset's root folder.

One place resolves them so that every command (train, bench, data check) agrees.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from t2igan.errors import ConfigError

CACHE_ENV = "T2IGAN_CACHE"
DATA_ENV = "T2IGAN_DATA"

# The folder names the official code uses under its data/ directory (DF-GAN/GALIP/RATLIP cfg/*.yml
# `data_dir`), also tried under $T2IGAN_DATA so that an existing official tree works unchanged.
OFFICIAL_FOLDER_NAMES: dict[str, tuple[str, ...]] = {
    "cub": ("birds",),
    "flowers": ("flower",),
    "coco": (),
    "celeba-tiny": ("faces",),
}


def cache_root() -> Path:
    """`$T2IGAN_CACHE`, else `~/.cache/t2igan`."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "t2igan"


def root_env_var(name: str) -> str:
    """The per-dataset environment variable: `celeba-tiny` -> `T2IGAN_CELEBA_TINY_ROOT`."""
    return "T2IGAN_" + name.upper().replace("-", "_") + "_ROOT"


def dataset_root(name: str, root: str | os.PathLike | None = None, env_var: str | None = None) -> Path:
    """The folder holding dataset `name`: `root` (the `--root` flag), then `$T2IGAN_<NAME>_ROOT`,
    then `$T2IGAN_DATA/<name>` (or its official folder name, e.g. `birds` for cub).

    Raises ConfigError naming the three places when none gives an existing folder.
    """
    env_var = env_var or root_env_var(name)
    if root is not None:
        return _existing(Path(root).expanduser(), f"--root {root}")
    if os.environ.get(env_var):
        return _existing(Path(os.environ[env_var]).expanduser(), f"${env_var}={os.environ[env_var]}")
    tried: list[str] = []
    data = os.environ.get(DATA_ENV)
    if data:
        for folder in (name, *OFFICIAL_FOLDER_NAMES.get(name, ())):
            candidate = Path(data).expanduser() / folder
            if candidate.is_dir():
                return candidate
            tried.append(str(candidate))
    found = f" (tried {', '.join(tried)}: not a folder)" if tried else f" (${DATA_ENV} is not set)"
    raise ConfigError(
        f"dataset {name!r}: no root folder given. Pass --root DIR, set ${env_var}=DIR, "
        f"or set ${DATA_ENV} to a folder holding {name}/{found}"
    )


def _existing(path: Path, origin: str) -> Path:
    if not path.is_dir():
        raise ConfigError(f"{origin}: {path} is not an existing folder (expected the dataset's root)")
    return path


# Below this much free space not even a `tiny` run's checkpoints and samples fit (a few MB each): the run
# would fail at its first checkpoint, after the encoders and the model were built.
MIN_FREE_BYTES = 64 * 2**20


def check_output_folder(path: str | os.PathLike, setting: str = "--out") -> Path:
    """`path` as a folder that can be written, checked before any work starts: not a file, not on a
    read-only file system or in a folder we cannot write, and with room on its disk. Nothing is created."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{setting} {folder}: is a file, expected a folder (give another {setting})")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{setting} {folder}: {existing} is a file, so the folder cannot be made in it")
    _check_writable(existing, folder, setting)
    return folder


def check_output_file(path: str | os.PathLike, setting: str = "--out") -> Path:
    """`path` as a file that can be written (its folder is made when missing), checked before any work."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise ConfigError(f"{setting} {file}: is a folder, expected a file name")
    check_output_folder(file.parent, setting)
    return file


def _check_writable(existing: Path, wanted: Path, setting: str) -> None:
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise ConfigError(
            f"{setting} {wanted}: {existing} is on a read-only file system; give another {setting}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{setting} {wanted}: no permission to write in {existing}; give another {setting}")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(
            f"{setting} {wanted}: only {free / 2**20:.1f} MiB free on the disk of {existing} (a run needs at "
            f"least {MIN_FREE_BYTES // 2**20} MiB); free some space or give another {setting}"
        )
