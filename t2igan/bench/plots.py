"""Report plots (matplotlib, PNG): quality against inference cost per model, and each metric against
training step where runs recorded a history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from t2igan.bench.records import STATUS_FINISHED, RunRecord

COST_METRIC = "images_per_second"
PLOTTED_LOSSES = ("d_loss", "g_loss")  # of the Trainer's logged losses, the two totals are plotted


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


def quality_vs_cost(root: Path, results: pd.DataFrame) -> list[Path]:
    """One PNG per (dataset, quality metric): mean over seeds against mean images/s, one point per model."""
    if results.empty or "metric" not in results:
        return []
    plt = _pyplot()
    written: list[Path] = []
    finished = results[results["status"] == STATUS_FINISHED]
    for dataset, part in finished.groupby("dataset"):
        cost = part[part["metric"] == COST_METRIC].groupby("model")["value"].mean()
        quality = part[(part["higher_is_better"].notna()) & (part["prov_backend"] != "t2igan")]
        for metric, rows in quality.groupby("metric"):
            if not _headline(str(metric)):
                continue
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
                f"{metric} ({'higher' if bool(rows['higher_is_better'].iloc[0]) else 'lower'} is better)"
            )
            ax.set_title(f"{dataset}: {metric} vs inference cost" + _caveat(rows))
            ax.set_xscale("log")
            written.append(_save(fig, root / f"plot_{_safe(dataset)}_{metric}_vs_cost.png"))
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
    from t2igan.bench.report import CAVEAT_MARK, value_caveats

    found = value_caveats(rows)
    return f"\n{CAVEAT_MARK} {'; '.join(found)}" if found else ""


def metric_vs_step(root: Path, records: list[RunRecord], results: pd.DataFrame | None = None) -> list[Path]:
    rows = [
        {"dataset": r.dataset, "model": r.model, "seed": r.seed, **h}
        for r in records
        for h in r.history
        if {"step", "metric", "value"} <= set(h) and _plotted_history(str(h["metric"]))
    ]
    if not rows:
        return []
    plt = _pyplot()
    history = pd.DataFrame(rows)
    written: list[Path] = []
    for (dataset, metric), part in history.groupby(["dataset", "metric"]):
        fig, ax = plt.subplots(figsize=(5, 4))
        for model, curve in part.groupby("model"):
            mean = curve.groupby("step")["value"].mean()
            ax.plot(mean.index, mean.values, marker="o", label=model)
        ax.set_xlabel("training step")
        ax.set_ylabel(metric)
        final = (
            results[(results["dataset"] == dataset) & (results["metric"] == metric)]
            if results is not None and not results.empty and "metric" in results
            else pd.DataFrame()
        )
        ax.set_title(f"{dataset}: {metric} during training (mean over seeds)" + _caveat(final))
        ax.legend(fontsize=8)
        written.append(_save(fig, root / f"plot_{_safe(dataset)}_{metric}_vs_step.png"))
        plt.close(fig)
    return written


def write_plots(root: Path, results: pd.DataFrame, records: list[RunRecord]) -> list[Path]:
    return quality_vs_cost(root, results) + metric_vs_step(root, records, results)
