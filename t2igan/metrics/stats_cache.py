"""Reference statistics (and features) of real images, cached under a key that holds everything that
changes them: dataset, split sha256, resolution, resize, back-end and its version, extractor sha256."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2igan.atomic import write_atomic
from t2igan.errors import T2IGanError
from t2igan.paths import cache_root

STATS_FORMAT = 1  # bump when what a stats file holds, or how it is computed, changes


@dataclass(frozen=True)
class StatsKey:
    """Everything that changes a set of reference statistics."""

    dataset: str
    split_sha256: str
    resolution: int | None
    resize: str
    backend: str
    backend_version: str
    extractor: str
    extractor_sha256: str
    feature: str  # layer or feature name, e.g. "2048", "probe-penultimate"
    n_images: int
    extra: str = ""  # anything else a caller's computation depends on (canonical JSON)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "format": STATS_FORMAT}

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def filename(self) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.dataset)
        return f"{safe}-{self.backend}-{self.feature}-{self.digest()[:20]}.npz"


def write_npz_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    return write_atomic(path, lambda handle: np.savez(handle, **arrays))


class StatsCache:
    """npz files under `<root>/metrics/stats/`, each holding its arrays plus the JSON of its key."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else cache_root()
        self.folder = self.root / "metrics" / "stats"

    def path(self, key: StatsKey) -> Path:
        return self.folder / key.filename()

    def load(self, key: StatsKey) -> dict[str, np.ndarray] | None:
        """The cached arrays, or None when absent; a file whose stored key differs is treated as absent."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = json.loads(str(data["key"]))
                arrays = {name: data[name] for name in data.files if name != "key"}
        except Exception:  # a truncated or foreign file is recomputed, never used
            return None
        if stored != key.as_dict():
            return None
        return arrays

    def save(self, key: StatsKey, arrays: Mapping[str, np.ndarray]) -> Path:
        if "key" in arrays:
            raise T2IGanError("stats arrays may not be named 'key' (reserved for the cache key)")
        payload = {name: np.asarray(value) for name, value in arrays.items()}
        payload["key"] = np.asarray(json.dumps(key.as_dict(), sort_keys=True))
        return write_npz_atomic(self.path(key), payload)

    def get_or_compute(
        self, key: StatsKey, compute: Callable[[], Mapping[str, np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], bool]:
        """(arrays, hit): the cached arrays, or `compute()`'s, saved for next time."""
        cached = self.load(key)
        if cached is not None:
            return cached, True
        arrays = {name: np.asarray(value) for name, value in compute().items()}
        self.save(key, arrays)
        return arrays, False
