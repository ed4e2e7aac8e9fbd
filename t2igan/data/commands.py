"""`t2igan data check | prepare`: what a dataset folder holds (and what is wrong with it), and building
its image caches ahead of training."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from t2igan.data.cache import ensure_image_cache
from t2igan.data.split import Split
from t2igan.errors import ConfigError, T2IGanError
from t2igan.paths import dataset_root

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

FALLBACK_RESOLUTION = 256


@dataclass
class SplitReport:
    """One split as found on disk."""

    name: str
    images: int
    captions_per_image: int
    captions: int
    sha256: str
    layout: str
    problems: list[str] = field(default_factory=list)  # files the loader skipped: not in the split or its sha
    notes: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # listed images that cannot be decoded: still in it


@dataclass
class CheckReport:
    """A dataset as found on disk; `ok` when no file was skipped and every listed image decodes."""

    dataset: str
    root: str | None
    splits: list[SplitReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # usable, but not what the papers used

    @property
    def ok(self) -> bool:
        return not any(s.problems or s.unreadable for s in self.splits)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "root": self.root,
            "ok": self.ok,
            "splits": [vars(s) for s in self.splits],
            "warnings": list(self.warnings),
        }


def _registry() -> Registry:
    from t2igan.registry import get_registry

    return get_registry()


def resolve_root(name: str, root: str | os.PathLike | None) -> Path | None:
    spec = _registry().dataset(name)
    if not spec.needs_root:
        return None
    return dataset_root(name, root, spec.root_env or None)


def load_split(
    name: str, split: str, root: str | os.PathLike | None = None, on_error: str = "raise", **options: Any
) -> Split:
    """Split `split` of registered dataset `name`, its root resolved as `dataset_root` does."""
    spec = _registry().dataset(name)
    if split not in spec.splits:
        raise T2IGanError(f"dataset {name!r} has splits {', '.join(spec.splits)}, not {split!r}")
    accepts = inspect.signature(spec.load_split).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in accepts.values())
    unknown = sorted(set(options) - set(accepts)) if not open_ended else []
    if unknown:
        known = sorted(set(accepts) - {"root", "split", "on_error"})
        raise ConfigError(
            f"dataset {name!r}: unknown option(s) {', '.join(unknown)}; it accepts {', '.join(known)}"
        )
    if on_error != "raise" and ("on_error" in accepts or open_ended):
        options["on_error"] = on_error
    return spec.load_split(resolve_root(name, root), split, **options)


def verify_image(path: Path) -> str | None:
    """None when the file decodes completely; else the reason. JPEGs decode at reduced scale (draft),
    which still reads every byte, so a truncated file is caught at a fraction of the cost."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (64, 64))
            img.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return f"image {path}: unreadable ({exc}); expected a JPEG/PNG image"
    return None


def check_split(split: Split, verify_images: bool = True, progress: bool = False) -> SplitReport:
    unreadable = []
    if verify_images and split.renderer is None:
        from t2igan.progress import progress_bar

        for index in progress_bar(
            range(len(split)), show=progress, desc=f"check {split.dataset}/{split.name}"
        ):
            reason = verify_image(split.image_path(index))
            if reason is not None:
                unreadable.append(reason)
    layout = str(split.preprocessing.get("layout") or split.preprocessing.get("generator") or "")
    return SplitReport(
        split.name,
        len(split),
        split.captions_per_image,
        len(split) * split.captions_per_image,
        split.sha256,
        layout,
        list(split.problems),
        list(split.notes),
        unreadable,
    )


def check_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    splits: list[str] | None = None,
    verify_images: bool = True,
    progress: bool = False,
    **options: Any,
) -> CheckReport:
    """Read every split in "collect" mode: missing or unreadable files are reported by name, not fatal.
    A missing root, split list or metadata file still raises T2IGanError."""
    spec = _registry().dataset(name)
    resolved = resolve_root(name, root)
    report = CheckReport(name, None if resolved is None else str(resolved))
    files: dict[str, set[str]] = {}
    for split_name in splits or spec.splits:
        split = load_split(name, split_name, resolved, on_error="collect", **options)
        report.splits.append(check_split(split, verify_images, progress))
        files[split_name] = {r.path for r in split.records if r.path is not None}
        official = spec.official_counts.get(split_name)
        if official is not None and len(split) != official and not options:
            report.warnings.append(
                f"{split_name}: {len(split):,} images, the official split has {official:,}: numbers from it "
                "are not comparable with the papers'"
            )
    names = sorted(files)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            shared = sorted(files[first] & files[second])
            if shared:  # RAT-GAN's flower lists test on the training images (docs/official-code.md, RAT-GAN)
                report.warnings.append(
                    f"{len(shared):,} image(s) are in both {first} and {second}, e.g. {shared[0]}: the test "
                    "split does not hold out what training sees"
                )
    return report


def format_check_report(report: CheckReport) -> str:
    lines = [f"{report.dataset}" + (f" at {report.root}" if report.root else " (generated, nothing on disk)")]
    for s in report.splits:
        lines.append(
            f"  {s.name:<6} {s.images:>8,} images x {s.captions_per_image} captions = {s.captions:,} captions"
            f"   sha256 {s.sha256}"
        )
        if s.layout:
            lines.append(f"         layout: {s.layout}")
        lines.extend(f"         note: {note}" for note in s.notes)
    skipped = [(s.name, p) for s in report.splits for p in s.problems]
    unreadable = [(s.name, p) for s in report.splits for p in s.unreadable]
    if skipped:
        lines.append(
            f"  {len(skipped)} problem(s); these images are skipped (left out of the split and its sha256):"
        )
        lines.extend(f"    [{split}] {problem}" for split, problem in skipped)
    if unreadable:
        lines.append(
            f"  {len(unreadable)} unreadable image(s), still counted in the split and its sha256; "
            "`data prepare` and training stop at them: replace them with readable copies"
        )
        lines.extend(f"    [{split}] {problem}" for split, problem in unreadable)
    lines.extend(f"  warning: {warning}" for warning in report.warnings)
    if not skipped and not unreadable:
        lines.append("  ok: every listed image and caption file is readable")
    return "\n".join(lines)


def prepare(
    name: str,
    root: str | os.PathLike | None = None,
    splits: list[str] | None = None,
    resolution: int | None = None,
    progress: bool = True,
    cache_root: Path | None = None,
    verify: bool | None = None,
    **options: Any,
) -> list[Path]:
    """Build the image cache of each split, or reuse a valid one (`verify=True` re-hashes it whatever its
    size); returns the cache array paths."""
    from t2igan.data.builtin import DEFAULT_RESOLUTION

    spec = _registry().dataset(name)
    resolution = resolution or DEFAULT_RESOLUTION.get(name, FALLBACK_RESOLUTION)
    resolved = resolve_root(name, root)
    paths = []
    for split_name in splits or spec.splits:
        split = load_split(name, split_name, resolved, **options)
        cache = ensure_image_cache(
            split, resolution, spec.augmentation, root=cache_root, progress=progress, verify=verify
        )
        paths.append(cache.array_path)
    return paths
