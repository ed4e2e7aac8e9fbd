"""From run records to tables: results.csv (long), table.csv (wide, mean ± std over seeds, numeric
columns beside the formatted ones), table.md and table.tex with the papers' numbers beside ours.

Runs are grouped by (dataset, split sha256, protocol, metric mode): values from different splits,
protocols or metric back-end modes are never averaged together; each group gets its own columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from t2igan.atomic import write_json_atomic, write_text_atomic
from t2igan.benchmarking.records import COST_MODE, STATUS_FINISHED, RunRecord, iter_records, split_identity
from t2igan.errors import T2IGanError
from t2igan.metrics.values import MAPPING, OWN_REFERENCE, PROVENANCE_FIELDS

# The provenance the report reads: every declared field that is one number, text or flag.
PROVENANCE_COLUMNS = tuple(key for key, declared in PROVENANCE_FIELDS.items() if declared.kind != MAPPING)
# the real-image accuracy a probe must reach before its readings of generated images are trusted: below it,
# its numbers are marked in every table
PROBE_MIN_ACCURACY = 0.95
CAVEAT_MARK = "†"


@dataclass
class Report:
    results: pd.DataFrame
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def results_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run × metric, with the run's identity and the metric's provenance."""
    rows: list[dict[str, Any]] = []
    for record in records:
        base = {
            "plan": record.plan,
            "dataset": record.dataset,
            "split_sha256": record.split.get("sha256", ""),
            "train_split_sha256": (record.split.get("train") or {}).get("sha256", ""),
            "protocol": record.protocol.get("name", ""),
            "model": record.model,
            "preset": record.preset,
            "seed": record.seed,
            "status": record.status,
            "budget_steps": record.budget.get("steps"),
        }
        if record.status != STATUS_FINISHED:
            rows.append({**base, "metric": None, "value": None, "error": record.error})
            continue
        for metric in record.metrics:
            provenance = metric.provenance or {}
            row = {
                **base,
                "metric": metric.name,
                "value": metric.value,
                "std_within_run": metric.std,
                "higher_is_better": metric.higher_is_better,
            }
            row.update({f"prov_{k}": provenance.get(k) for k in PROVENANCE_COLUMNS})
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["group"] = frame.apply(lambda r: _group_key(r), axis=1)
    return frame


def _split_id(row: pd.Series) -> str:
    return split_identity(row["split_sha256"], row.get("train_split_sha256"))


def _group_key(row: pd.Series) -> str:
    mode = row.get("prov_mode")
    return "|".join(
        str(x)
        for x in (row["dataset"], _split_id(row), row["protocol"], mode if isinstance(mode, str) else "")
    )


def column_labels(results: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """Column prefix per group: the dataset name, qualified only where a dataset has several groups."""
    labels: dict[str, str] = {}
    notes: list[str] = []
    finished = results.dropna(subset=["metric"])
    for dataset, part in finished.groupby("dataset", sort=True):
        splits = sorted(set(part.apply(_split_id, axis=1)))
        protocols = sorted(set(part["protocol"]))
        if len(splits) > 1:
            notes.append(
                f"{dataset}: runs used {len(splits)} different splits "
                f"({', '.join('+'.join(p[:12] for p in s.split('+')) for s in splits)}); "
                "their values are kept in separate columns, never averaged together."
            )
        if len(protocols) > 1:
            notes.append(f"{dataset}: runs used protocols {', '.join(protocols)}; kept in separate columns.")
        fid_modes = sorted({g.split("|")[3] for g in part.loc[part["metric"] == "fid", "group"]} - {""})
        if len(fid_modes) > 1:  # a bench refuses this (runner.check_fid_mode); hand-merged records may not
            notes.append(
                f"{dataset}: FID in modes {', '.join(fid_modes)}: the numbers of different modes are not "
                "comparable; each mode has its own column."
            )
        for group in sorted(set(part["group"])):
            _, sha, protocol, mode = group.split("|")
            label = dataset
            if len(splits) > 1:
                label += "[split " + "+".join(part[:8] for part in sha.split("+")) + "]"
            if len(protocols) > 1 or protocol == "quick":
                label += f"[{protocol}]"
            labels[group] = label
    return labels, notes


def metric_column(label: str, metric: str, mode: str) -> str:
    return f"{label}/{metric}" + (f"[{mode}]" if mode else "")


def wide_table(
    results: pd.DataFrame, paper: dict[tuple[str, str, str], dict[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """Models × (dataset/metric): formatted 'mean ± std' plus numeric mean, std and n, and the paper's
    number where the model spec reports one."""
    if results.empty or results["metric"].isna().all():
        return pd.DataFrame(), ["no finished runs: nothing to tabulate"]
    labels, notes = column_labels(results)
    finished = results.dropna(subset=["metric"])
    table: dict[str, dict[str, Any]] = {}
    for (group, metric, model), part in finished.groupby(["group", "metric", "model"], sort=True):
        mode = group.split("|")[3]
        column = metric_column(labels[group], metric, mode)
        values = part["value"].astype(float)
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row = table.setdefault(model, {"model": model})
        row[column] = format_mean_std(mean, std)
        row[f"{column}/mean"] = mean
        row[f"{column}/std"] = std
        row[f"{column}/n"] = len(values)
        row[f"{column}/higher_is_better"] = part["higher_is_better"].iloc[0]
        caveats = value_caveats(part)
        if caveats:
            row[f"{column}/caveat"] = "; ".join(caveats)
        dataset = group.split("|")[0]
        reported = paper.get((model.split(":")[0], dataset, metric))
        if reported is not None and ":" not in model:
            row[f"{column}/paper"] = reported["value"]
            row[f"{column}/paper_source"] = reported["source"]
    failed = results[results["status"] != STATUS_FINISHED]
    for _, run in failed.iterrows():
        notes.append(
            f"{run['dataset']} / {run['model']} / seed {run['seed']}: {run['status']} — {run.get('error')}"
        )
    frame = pd.DataFrame(list(table.values()))
    costs = [c for c in frame.columns if c.count("/") and c.split("/")[1].endswith(f"[{COST_MODE}]")]
    frame = frame[[c for c in frame.columns if c not in costs] + costs]  # quality first, costs last
    return frame, notes


def value_caveats(part: pd.DataFrame) -> list[str]:
    """Why the values of one cell must not be read as the real thing: a paper-mode FID against our own
    statistics, fewer images than the protocol selects (quick), stand-in (random, substitute or unverified)
    weights, or a probe accepted below the 0.95 real-image accuracy the metric asks for."""
    caveats: list[str] = []
    if {"prov_mode", "prov_reference_source"} <= set(part.columns):
        own = part[
            (part["metric"] == "fid")
            & (part["prov_mode"] == "paper")
            & (part["prov_reference_source"] == OWN_REFERENCE)
        ]
        if not own.empty:
            hashes = sorted({str(h)[:12] for h in own["prov_reference_stats_sha256"].dropna()})
            caveats.append(
                "against t2igan's own statistics of the test split"
                + (f" (sha256 {', '.join(hashes)})" if hashes else "")
                + ", not the paper's official statistics file (give it with --fid-reference)"
            )
    if "prov_quick" in part and part["prov_quick"].eq(True).any():
        counts = sorted({int(n) for n in pd.to_numeric(part.get("prov_n_fake"), errors="coerce").dropna()})
        caveats.append(
            "quick: scored on "
            + (f"{', '.join(map(str, counts))} generated images" if counts else "a capped image count")
            + ", not every image the protocol selects"
        )
    if "prov_stand_in" in part and part["prov_stand_in"].eq(True).any():
        notes = sorted({str(n) for n in part.get("prov_weights_note", pd.Series(dtype=object)).dropna() if n})
        caveats.append("stand-in weights" + (f" ({'; '.join(notes)})" if notes else ""))
    if "prov_min_accuracy" in part:
        lowered = pd.to_numeric(part["prov_min_accuracy"], errors="coerce").dropna()
        lowered = lowered[lowered < PROBE_MIN_ACCURACY]
        if not lowered.empty:
            caveats.append(
                f"probe accepted at min_accuracy {lowered.min():g} (< {PROBE_MIN_ACCURACY}): "
                "its real-image accuracy may be too low for these numbers to be trusted"
            )
    return caveats


def caveat_notes(table: pd.DataFrame) -> list[str]:
    """One note per marked column (the mark is CAVEAT_MARK in Markdown and LaTeX headers)."""
    notes = []
    for column in display_columns(table):
        found = table.get(f"{column}/caveat")
        if found is not None and not found.dropna().empty:
            reasons = "; ".join(sorted(set(found.dropna())))
            notes.append(f"{CAVEAT_MARK} {column}: {reasons}")
    return notes


def _header(table: pd.DataFrame, column: str, latex: bool = False) -> str:
    """The column name, marked when a caveat applies, with its direction: "fid (↓)" ("fid ↓" in LaTeX)."""
    caveat = table.get(f"{column}/caveat")
    mark = CAVEAT_MARK if caveat is not None and caveat.notna().any() else ""
    arrow = _arrow(table, column)
    if not arrow:
        return f"{column}{mark}"
    return f"{column}{mark} {arrow}" if latex else f"{column}{mark} ({arrow})"


def format_mean_std(mean: float, std: float) -> str:
    if mean.is_integer() and abs(mean) >= 1000 and (math.isnan(std) or std == 0):
        return f"{int(mean):,}"  # counts (parameters): 9,744,131
    digits = 2 if abs(mean) >= 1 else 4
    if math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_columns(table: pd.DataFrame) -> list[str]:
    """The formatted metric columns (not the numeric companions), in table order."""
    suffixes = ("/mean", "/std", "/n", "/higher_is_better", "/paper", "/paper_source", "/caveat")
    return [c for c in table.columns if c != "model" and not c.endswith(suffixes)]


def best_rows(table: pd.DataFrame, column: str) -> set[int]:
    means = table.get(f"{column}/mean")
    direction = table.get(f"{column}/higher_is_better")
    if means is None or direction is None or means.dropna().empty:
        return set()
    known = direction.dropna()
    if known.empty:
        return set()
    target = means.max() if bool(known.iloc[0]) else means.min()
    return set(table.index[means == target])


def _cell(table: pd.DataFrame, index: int, column: str) -> tuple[str, str]:
    value = table.at[index, column]
    ours = "–" if not isinstance(value, str) else value
    paper = table.at[index, f"{column}/paper"] if f"{column}/paper" in table.columns else None
    paper_text = "" if paper is None or (isinstance(paper, float) and math.isnan(paper)) else f"{paper:g}"
    return ours, paper_text


def to_markdown(table: pd.DataFrame, notes: list[str]) -> str:
    columns = display_columns(table)
    header = ["model"] + [_header(table, c) for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {c: best_rows(table, c) for c in columns}
    for index in table.index:
        cells = [str(table.at[index, "model"])]
        for c in columns:
            ours, paper = _cell(table, index, c)
            if index in best[c]:
                ours = f"**{ours}**"
            cells.append(ours + (f" (paper: {paper})" if paper else ""))
        lines.append("| " + " | ".join(cells) + " |")
    sources = _paper_sources(table)
    text = "\n".join(lines) + "\n"
    text += "\nMean ± sample std over seeds; best per column in bold.\n"
    if sources:
        text += "\nPaper numbers: " + "; ".join(sources) + ".\n"
    if notes:
        text += "\nNotes:\n" + "".join(f"- {n}\n" for n in notes)
    return text


def _arrow(table: pd.DataFrame, column: str) -> str:
    """↑ / ↓ for a metric with a direction; nothing for a cost such as a parameter count."""
    direction = table.get(f"{column}/higher_is_better")
    if direction is None or direction.dropna().empty:
        return ""
    return "↑" if bool(direction.dropna().iloc[0]) else "↓"


def _paper_sources(table: pd.DataFrame) -> list[str]:
    sources: list[str] = []
    for column in table.columns:
        if column.endswith("/paper_source"):
            for model, source in zip(table["model"], table[column], strict=False):
                if isinstance(source, str):
                    sources.append(f"{model} {column[: -len('/paper_source')]}: {source}")
    return sources


TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    CAVEAT_MARK: r"$^\dagger$",
    "↓": r"$\downarrow$",
    "–": "--",
}


def _tex_escape(text: str) -> str:
    return "".join(TEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame) -> str:
    columns = display_columns(table)
    best = {c: best_rows(table, c) for c in columns}
    spec = "l" + "c" * len(columns)
    header = " & ".join(["Model"] + [_tex_escape(_header(table, c, latex=True)) for c in columns])
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule", header + r" \\", r"\midrule"]
    for index in table.index:
        cells = [_tex_escape(str(table.at[index, "model"]))]
        for c in columns:
            ours, paper = _cell(table, index, c)
            ours = _tex_escape(ours)
            if index in best[c]:
                ours = r"\textbf{" + ours + "}"
            cells.append(ours + (f" ({paper})" if paper else ""))
        lines.append(" & ".join(cells) + r" \\")
    lines.append(r"\bottomrule")
    sources = _paper_sources(table)
    if sources:  # what the bracketed numbers are, and where each comes from
        width = len(columns) + 1
        lines.append(
            rf"\multicolumn{{{width}}}{{l}}{{\footnotesize (x): the number reported for the model; sources:}} \\"
        )
        for source in sources:
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\footnotesize {_tex_escape(source)}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


PAPER_NOTES = ("paper", "")  # the paper's own number; others ("released model", "as quoted by …") rank after


def paper_lookup(records: list[RunRecord]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The reported number shown beside ours per (model, dataset, metric): the paper's own when the spec
    lists several (DF-GAN's README gives the paper's and its released model's FID), else the first listed;
    a note other than "paper" goes into the source, so the table says which number it is."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        for result in record.paper_results:
            key = (record.model_name or record.model.split(":")[0], result["dataset"], result["metric"])
            held = found.get(key)
            if held is None or (
                held.get("note", "") not in PAPER_NOTES and result.get("note", "") in PAPER_NOTES
            ):
                note = result.get("note", "")
                source = result["source"] + (f" ({note})" if note not in PAPER_NOTES else "")
                found[key] = {**result, "source": source}
    return found


def optimised_notes(records: list[RunRecord], results: pd.DataFrame) -> list[str]:
    """A note under a metric that some models optimise during training, where they were scored with the
    same encoder they trained against (its weights' sha256): the number favours them over the others."""
    trained_on: dict[tuple[str, str, str], set[str]] = {}  # (dataset, metric, encoder sha256) -> models
    for record in records:
        sha = (record.text_encoder or {}).get("weights_sha256")
        for metric in record.optimises if sha else ():
            trained_on.setdefault((record.dataset, metric, sha), set()).add(record.model_name or record.model)
    if not trained_on or results.empty or "prov_extractor_sha256" not in results.columns:
        return []
    notes = []
    scored = results.dropna(subset=["metric"]).drop_duplicates(["dataset", "metric", "prov_extractor_sha256"])
    for _, row in scored.sort_values(["dataset", "metric"]).iterrows():
        models = trained_on.get((row["dataset"], row["metric"], row["prov_extractor_sha256"]))
        if models:
            notes.append(
                f"{row['dataset']}/{row['metric']}: {', '.join(sorted(models))} optimise this score's quantity "
                f"while training, under the same encoder (sha256 {str(row['prov_extractor_sha256'])[:12]}), as "
                "their own papers' protocol does; it favours them over models that do not"
            )
    return notes


def reference_notes(results: pd.DataFrame) -> list[str]:
    """One line per dataset giving chance and real-image levels where metrics carry them, so that a number
    such as a colour accuracy of 0.4 can be read (chance 0.167, real images 0.990)."""
    if results.empty or "prov_chance" not in results.columns:
        return []
    notes = []
    known = results.dropna(subset=["prov_chance", "prov_reference"], how="all")

    def show(value: Any) -> str:
        return "–" if pd.isna(value) else f"{value:.3f}"

    for dataset, part in known.groupby("dataset", sort=True):
        levels = part.groupby("metric", sort=True)[["prov_chance", "prov_reference"]].first()
        cells = [
            f"{metric} {show(row.prov_chance)} / {show(row.prov_reference)}"
            for metric, row in levels.iterrows()
        ]
        notes.append(f"{dataset} levels (chance / real test images): " + ", ".join(cells))
    return notes


def build_report(root: str | Path, write: bool = True) -> Report:
    root = Path(root)
    if not root.is_dir():
        raise T2IGanError(f"{root}: no such folder (expected a bench output folder holding run records)")
    records = [record for _, record in iter_records(root)]
    if not records:
        raise T2IGanError(f"{root}: no record.json found under it (has a bench run written there?)")
    results = results_frame(records)
    table, notes = wide_table(results, paper_lookup(records))
    notes += caveat_notes(table) + reference_notes(results) + optimised_notes(records, results)
    report = Report(results, table, notes)
    if write:
        _write_outputs(root, report, records)
    return report


def _write_outputs(root: Path, report: Report, records: list[RunRecord]) -> None:
    def atomic_text(name: str, text: str) -> Path:
        return write_text_atomic(root / name, text)

    report.files.append(atomic_text("results.csv", report.results.to_csv(index=False)))
    report.files.append(atomic_text("table.csv", report.table.to_csv(index=False)))
    if not report.table.empty:
        report.files.append(atomic_text("table.md", to_markdown(report.table, report.notes)))
        report.files.append(atomic_text("table.tex", to_latex(report.table)))
    report.files.append(write_json_atomic(root / "report_notes.json", {"notes": report.notes}))
    from t2igan.benchmarking.plots import write_plots

    report.files.extend(write_plots(root, report.results, records))
