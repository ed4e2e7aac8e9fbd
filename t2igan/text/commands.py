"""`t2igan pretrain-encoder damsm|clip`: pre-train the project's DAMSM pair or small CLIP on a dataset,
into the content-hash cache (what `bench` reuses) or into the file given with --out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from t2igan.errors import ConfigError


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings -> a config mapping; values are read as JSON when they parse, else as text."""
    import json

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config {item!r}: expected KEY=VALUE, e.g. epochs=5")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def run_pretrain(args: argparse.Namespace) -> int:
    """Load the dataset's train and test splits, pre-train (or load the cached encoder), print its figures."""
    from t2igan.data.commands import load_split
    from t2igan.text import pretrained
    from t2igan.train.session import parse_dataset_ref

    name, options = parse_dataset_ref(args.data)
    train = load_split(name, "train", args.root, **options)
    test = load_split(name, "test", args.root, **options)
    config: Mapping[str, Any] = parse_overrides(getattr(args, "config", None))
    device = getattr(args, "device", None) or "cpu"
    if args.out:
        out = Path(args.out)
        meta = pretrained.train_and_save(args.kind, args.data, train, test, out, config, device, args.seed)
        _print_result(args.kind, meta.get("retrieval_top1"), meta["sha256"], out, meta["stats"], True)
        return 0
    encoder = pretrained.ensure_pretrained(
        args.kind, args.data, train, test, device=device, seed=args.seed, config=config
    )
    _print_result(
        args.kind, encoder.retrieval_top1, encoder.sha256, encoder.path, encoder.stats, encoder.trained_now
    )
    return 0


def _print_result(
    kind: str, top1: float | None, sha256: str, path: Path, stats: Mapping[str, Any], trained: bool
) -> None:
    figure = "n/a" if top1 is None else f"{top1:.3f}"
    how = f"trained in {float(stats.get('wall_seconds', 0.0)):.0f} s" if trained else "cached"
    epochs = stats.get("epochs")
    print(f"{kind}: text->image top-1 among 100 = {figure} ({how}, {epochs} epochs)")
    print(f"sha256 {sha256}")
    print(f"path   {path}")
    sys.stdout.flush()
