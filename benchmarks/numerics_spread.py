"""The margin each learning claim of the suite keeps: reads the JSONL that the `numerics` tests write
(T2IGAN_NUMERICS_LOG) and prints, per claim, its bound and the values over every seed and setting.

    python benchmarks/numerics_spread.py runs/numerics/numerics.jsonl

`benchmarks/numerics_matrix.sh` runs the tests under several settings and calls this at the end.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def setting(entry: dict) -> str:
    isa = f", oneDNN {entry['onednn_isa']}" if entry.get("onednn_isa") else ""
    return f"{entry['capability']}{isa}, {entry['threads']} thr"


def spread_rows(entries: list[dict]) -> list[dict]:
    """One row per (test, claim): the bound, the range over seeds × settings, the smallest margin, and
    the largest difference that the setting alone makes at one seed (rounding, not the seed)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for entry in entries:
        groups[entry["test"], entry["claim"]].append(entry)
    rows = []
    for (test, claim), group in sorted(groups.items()):
        by_seed: dict[object, list[float]] = defaultdict(list)
        for entry in group:
            by_seed[entry["seed"]].append(entry["value"])
        values = [entry["value"] for entry in group]
        rows.append(
            {
                "test": test.split("::")[-1],
                "file": test.split("::")[0].removeprefix("tests/"),
                "claim": claim,
                "bound": f"{group[0]['sense']} {group[0]['bound']:.3g}",
                "range": f"{min(values):.3g} – {max(values):.3g}",
                "worst margin": min(entry["margin"] for entry in group),
                "rounding": max(max(v) - min(v) for v in by_seed.values()),
                "seeds": len(by_seed),
                "settings": len({setting(entry) for entry in group}),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    header = ["file", "claim", "bound", "range", "worst margin", "rounding", "seeds", "settings"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{row[key]:.3g}" if isinstance(row[key], float) else str(row[key]) for key in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="the JSONL written by the numerics tests")
    args = parser.parse_args()
    entries = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    if not entries:
        raise SystemExit(f"{args.log}: no claims logged (run the tests with T2IGAN_NUMERICS_LOG set)")
    print("settings: " + "; ".join(sorted({setting(entry) for entry in entries})))
    print(markdown(spread_rows(entries)))
    print("\nrounding: the largest change the setting alone makes to a value at one seed")


if __name__ == "__main__":
    main()
