"""Report plots (matplotlib, PNG): quality against inference cost per model, and each metric against
training step where runs recorded a history.

Like the tables, a plot only averages runs made on the same test and train split with the same protocol
(and, for a metric, the same back-end mode): a dataset whose runs fall into several such groups gets one
plot per group, its title naming the split and protocol."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from t2igan.benchmarking.records import STATUS_FINISHED, RunRecord, split_identity

COST_METRIC = "images_per_second"
PLOTTED_LOSSES = ("d_loss", "g_loss")  # of the Trainer's logged losses, the two totals are plotted


@dataclass(frozen=True)
class Group:
    """Runs of one dataset that may be averaged together; `tag`/`suffix` are empty when it is the only one."""

    dataset: str
    tag: str  # for the title
    suffix: str  # for the file name
    rows: pd.DataFrame


def _safe(name: str) -> str:
    """A dataset label such as `shapes:size=tiny` as part of a file name."""
    return "".join(ch if ch.isalnum() or ch in "._-=" else "_" for ch in str(name))


def _headline(metric: str) -> bool:
    """Plotted metrics: the headline ones, not every per-attribute breakdown of the probe."""
    return not metric.startswith("probe_") or metric == "probe_fd"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    return path


def _comparable(split: object, train_split: object, protocol: object) -> str:
    """What runs must share to be averaged, as in the tables: their data (`split_identity`) and protocol."""
    return f"{split_identity(split, train_split)}|{protocol}"


def _groups(frame: pd.DataFrame) -> Iterator[Group]:
    for dataset, part in frame.groupby("dataset"):
        groups = list(part.groupby("_group"))
        for index, (key, rows) in enumerate(groups):
            if len(groups) == 1:
                yield Group(str(dataset), "", "", rows)
                continue
            split, protocol = str(key).split("|", 1)
            yield Group(str(dataset), f" [split {split[:8]}, {protocol}]", f"_g{index + 1}", rows)


def quality_vs_cost(root: Path, results: pd.DataFrame) -> list[Path]:
    """One PNG per (dataset group, quality metric and mode): mean over seeds against mean images/s, one
    point per model."""
    if results.empty or "metric" not in results:
        return []
    plt = _pyplot()
    written: list[Path] = []
    finished = results[results["status"] == STATUS_FINISHED].copy()
    train = (
        finished["train_split_sha256"] if "train_split_sha256" in finished else pd.Series("", finished.index)
    )
    finished["_group"] = [
        _comparable(*key) for key in zip(finished["split_sha256"], train, finished["protocol"], strict=True)
    ]
    modes = finished["prov_mode"] if "prov_mode" in finished else pd.Series("", finished.index)
    finished["_mode"] = [m if isinstance(m, str) else "" for m in modes]
    for group in _groups(finished):
        part = group.rows
        cost = part[part["metric"] == COST_METRIC].groupby("model")["value"].mean()
        quality = part[(part["higher_is_better"].notna()) & (part["prov_backend"] != "t2igan")]
        for (metric, mode), rows in quality.groupby(["metric", "_mode"]):
            if not _headline(str(metric)):
                continue
            several = (
                quality.loc[quality["metric"] == metric, "_mode"].nunique() > 1
            )  # e.g. FID clean and paper
            label = f"{metric}[{mode}]" if several else str(metric)
            means = rows.groupby("model")["value"].mean()
            models = [m for m in means.index if m in cost.index]
            if not models:
                continue
            fig, ax = plt.subplots(figsize=(5, 4))
            ax.scatter([cost[m] for m in models], [means[m] for m in models])
            for m in models:
                ax.annotate(m, (cost[m], means[m]), fontsize=8, xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel("inference images / s (higher is cheaper)")
            ax.set_ylabel(
                f"{label} ({'higher' if bool(rows['higher_is_better'].iloc[0]) else 'lower'} is better)"
            )
            ax.set_title(f"{group.dataset}{group.tag}: {label} vs inference cost" + _caveat(rows))
            ax.set_xscale("log")
            name = f"plot_{_safe(group.dataset)}{group.suffix}_{_safe(str(label))}_vs_cost.png"
            written.append(_save(fig, root / name))
            plt.close(fig)
    return written


def _plotted_history(metric: str) -> bool:
    """Evaluated metrics, and of the Trainer's many logged losses only the D and G totals."""
    is_loss = metric.startswith(("d_", "g_")) or (
        metric[:1] == "d" and "_" in metric and metric[1:2].isdigit()
    )
    return metric in PLOTTED_LOSSES or not is_loss


def _caveat(rows: pd.DataFrame) -> str:
    """The report's mark for values made with stand-in weights or a lowered probe threshold."""
    from t2igan.benchmarking.report import CAVEAT_MARK, value_caveats

    found = value_caveats(rows)
    return f"\n{CAVEAT_MARK} {'; '.join(found)}" if found else ""


def metric_vs_step(root: Path, records: list[RunRecord], results: pd.DataFrame | None = None) -> list[Path]:
    rows = [
        {
            "dataset": r.dataset,
            "model": r.model,
            "seed": r.seed,
            "_group": _comparable(
                r.split.get("sha256", ""),
                (r.split.get("train") or {}).get("sha256"),
                r.protocol.get("name", ""),
            ),
            **h,
        }
        for r in records
        for h in r.history
        if {"step", "metric", "value"} <= set(h) and _plotted_history(str(h["metric"]))
    ]
    if not rows:
        return []
    plt = _pyplot()
    written: list[Path] = []
    for group in _groups(pd.DataFrame(rows)):
        for metric, part in group.rows.groupby("metric"):
            fig, ax = plt.subplots(figsize=(5, 4))
            for model, curve in part.groupby("model"):
                mean = curve.groupby("step")["value"].mean()
                ax.plot(mean.index, mean.values, marker="o", label=model)
            ax.set_xlabel("training step")
            ax.set_ylabel(metric)
            final = (
                results[(results["dataset"] == group.dataset) & (results["metric"] == metric)]
                if results is not None and not results.empty and "metric" in results
                else pd.DataFrame()
            )
            title = f"{group.dataset}{group.tag}: {metric} during training (mean over seeds)"
            ax.set_title(title + _caveat(final))
            ax.legend(fontsize=8)
            name = f"plot_{_safe(group.dataset)}{group.suffix}_{_safe(str(metric))}_vs_step.png"
            written.append(_save(fig, root / name))
            plt.close(fig)
    return written


def write_plots(root: Path, results: pd.DataFrame, records: list[RunRecord]) -> list[Path]:
    return quality_vs_cost(root, results) + metric_vs_step(root, records, results)
