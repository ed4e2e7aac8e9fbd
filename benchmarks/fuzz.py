"""Fuzz the command's inputs for longer than the suite does: plan files, model references, `bench` flags
and caption files (the strategies of tests/fuzzing.py). Prints, per kind, how many inputs were tried,
accepted and refused, and any that escaped (ended other than in success or one line of our errors).

The `bench` flags are given `--out` pointing at a finished run folder (`--beside DIR`, or one this script
trains first: one 2-step DF-GAN run on shapes:size=tiny); every file in it is hashed before and after,
and the script says whether it is unchanged.

    python benchmarks/fuzz.py --examples 2000
    python benchmarks/fuzz.py --examples 500 --beside runs/shapes-smoke

Exit status 1 when an input escaped or the folder changed.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/fuzzing.py holds the strategies

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests import fuzzing  # noqa: E402
from tests.conftest import TINY_ENCODER_SETTINGS  # noqa: E402


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def finished_run(folder: Path) -> Path:
    """A bench output folder holding one finished run (2 steps, quick protocol, tiny encoders)."""
    plan = folder / "tiny.toml"
    plan.write_text(
        'models = ["dfgan"]\nsteps = 2\ndata = ["shapes:size=tiny"]\nprotocol = "quick"\n'
        + TINY_ENCODER_SETTINGS,
        encoding="utf-8",
    )
    out = folder / "finished"
    env = {**os.environ, "T2IGAN_CACHE": str(folder / "cache")}
    subprocess.run(
        [sys.executable, "-m", "t2igan", "-q", "bench", str(plan), "--out", str(out)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return out


def run_kind(name: str, strategy, check, examples: int) -> dict[str, object]:
    counts: collections.Counter[str] = collections.Counter()
    escaped: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value):
        try:
            counts[check(value)] += 1
        except fuzzing.Escaped as exc:
            counts["escaped"] += 1
            if len(escaped) < 5:
                escaped.append(f"{value!r:.120}: {exc}")

    start = time.perf_counter()
    run()
    return {"kind": name, "counts": counts, "escaped": escaped, "seconds": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=2000, help="inputs per kind (default 2000)")
    parser.add_argument(
        "--beside", type=Path, default=None, help="a finished bench output folder to keep unchanged"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        beside = args.beside or finished_run(scratch)
        before = tree_hashes(beside)
        work = scratch / "work"
        work.mkdir()
        kinds = [
            ("plan files", fuzzing.plan_texts, lambda text: fuzzing.check_plan_text(text, work)),
            ("model references", fuzzing.model_refs, fuzzing.check_model_ref),
            ("bench flags", fuzzing.bench_argv, lambda argv: fuzzing.check_bench_argv(argv, beside)),
            ("caption files", fuzzing.caption_bytes, lambda data: fuzzing.check_caption_file(data, work)),
        ]
        results = [run_kind(name, strategy, check, args.examples) for name, strategy, check in kinds]
        after = tree_hashes(beside)
    bad = False
    print(f"{'kind':<18} {'tried':>6} {'ok':>6} {'refused':>8} {'escaped':>8} {'seconds':>8}")
    for result in results:
        counts = result["counts"]
        tried = sum(counts.values())
        print(
            f"{result['kind']:<18} {tried:>6} {counts['ok']:>6} {counts['refused']:>8} {counts['escaped']:>8} "
            f"{result['seconds']:>8.1f}"
        )
        for line in result["escaped"]:
            print(f"    escaped: {line}")
        bad |= bool(counts["escaped"])
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    print(f"finished run folder beside it: {len(before)} files, {'unchanged' if not changed else 'CHANGED'}")
    for name in changed[:10]:
        print(f"    changed: {name}")
    return 1 if bad or changed else 0


if __name__ == "__main__":
    sys.exit(main())
