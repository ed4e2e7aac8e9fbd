"""The report from run records: long and wide CSV, mean ± std over seeds, paper numbers, best marked,
and runs on different splits never averaged together."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from t2igan.benchmarking.records import COST_MODE, RunRecord, read_record, run_dir, write_record
from t2igan.benchmarking.report import build_report, format_mean_std
from t2igan.errors import T2IGanError
from t2igan.metrics.values import MetricValue

SHA = "a" * 64
VALUES = {  # model -> seed -> (fid, accuracy)
    "dfgan": {0: (30.0, 0.61), 1: (34.0, 0.65)},
    "dfgan:fusion=rat": {0: (28.0, 0.70), 1: (29.5, 0.74)},
}


def make_record(model, seed, fid, acc, sha=SHA, status="finished", error=None):
    metrics = [
        MetricValue(
            "fid",
            fid,
            higher_is_better=False,
            provenance={"backend": "torch-fidelity", "mode": "standard", "n_fake": 100},
        ),
        MetricValue("probe_acc", acc, higher_is_better=True, provenance={"backend": "t2igan-probe"}),
        MetricValue(
            "images_per_second", 100.0 + seed, higher_is_better=True, provenance={"backend": "t2igan"}
        ),
    ]
    return RunRecord(
        plan="demo",
        dataset="shapes",
        model=model,
        seed=seed,
        status=status,
        error=error,
        model_name=model.split(":")[0],
        preset="tiny",
        split={"name": "test", "sha256": sha, "count": 10},
        protocol={"name": "paper"},
        budget={"name": "smoke", "steps": 10},
        metrics=metrics if status == "finished" else [],
        paper_results=[
            {"dataset": "shapes", "metric": "fid", "value": 12.5, "source": "made-up test source"}
        ],
        history=[
            {"step": 5, "metric": "probe_acc", "value": acc / 2},
            {"step": 10, "metric": "probe_acc", "value": acc},
        ],
    )


@pytest.fixture
def runs(tmp_path):
    for model, seeds in VALUES.items():
        for seed, (fid, acc) in seeds.items():
            write_record(run_dir(tmp_path, "shapes", model, seed), make_record(model, seed, fid, acc))
    write_record(
        run_dir(tmp_path, "shapes", "broken", 0),
        make_record("broken", 0, 0, 0, status="failed", error="TrainingDiverged: step 3: nan"),
    )
    return tmp_path


def test_results_csv_has_one_row_per_run_and_metric(runs):
    build_report(runs)
    results = pd.read_csv(runs / "results.csv")
    finished = results[results["status"] == "finished"]
    assert len(finished) == 4 * 3
    assert set(finished["metric"]) == {"fid", "probe_acc", "images_per_second"}
    assert finished.loc[finished["metric"] == "fid", "prov_backend"].eq("torch-fidelity").all()
    failed = results[results["status"] == "failed"]
    assert list(failed["model"]) == ["broken"] and "TrainingDiverged" in failed["error"].iloc[0]


def test_table_mean_and_std_match_an_independent_computation(runs):
    build_report(runs)
    table = pd.read_csv(runs / "table.csv").set_index("model")
    for model, seeds in VALUES.items():
        fids = [v[0] for v in seeds.values()]
        column = "shapes/fid[standard]"
        assert table.at[model, f"{column}/mean"] == pytest.approx(statistics.mean(fids))
        assert table.at[model, f"{column}/std"] == pytest.approx(statistics.stdev(fids))
        assert table.at[model, f"{column}/n"] == 2
        assert table.at[model, column] == format_mean_std(statistics.mean(fids), statistics.stdev(fids))
    assert table.at["dfgan", "shapes/fid[standard]/paper"] == 12.5
    # a variant is not the paper's model: no paper number beside it
    assert math.isnan(table.at["dfgan:fusion=rat", "shapes/fid[standard]/paper"])


def test_markdown_marks_the_best_per_column_by_direction(runs):
    build_report(runs)
    md = (runs / "table.md").read_text()
    rat_row = next(line for line in md.splitlines() if line.startswith("| dfgan:fusion=rat"))
    base_row = next(line for line in md.splitlines() if line.startswith("| dfgan |"))
    assert "**28.75 ± 1.06**" in rat_row  # lower FID is better
    assert "**0.7200 ± 0.0283**" in rat_row  # higher accuracy is better
    assert "(paper: 12.5)" in base_row
    assert "made-up test source" in md
    assert "broken / seed 0: failed" in md


def test_latex_is_booktabs_and_escaped(runs):
    build_report(runs)
    tex = (runs / "table.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex
    assert "probe\\_acc" in tex and "$\\pm$" in tex
    assert "\\textbf{28.75 $\\pm$ 1.06}" in tex


def test_the_papers_own_number_is_shown_and_any_other_kind_is_named(tmp_path):
    """DF-GAN's README lists the paper's FID and its released model's; the paper's is the one beside ours,
    and a number of another kind (the only one given) says what it is, in md and tex alike."""
    record = make_record("dfgan", 0, 20.0, 0.5)
    record.paper_results = [
        {"dataset": "shapes", "metric": "fid", "value": 12.1, "source": "README", "note": "released model"},
        {"dataset": "shapes", "metric": "fid", "value": 14.81, "source": "README", "note": "paper"},
        {
            "dataset": "shapes",
            "metric": "probe_acc",
            "value": 0.9,
            "source": "README",
            "note": "released model",
        },
    ]
    write_record(run_dir(tmp_path, "shapes", "dfgan", 0), record)
    table = build_report(tmp_path).table.set_index("model")
    assert table.at["dfgan", "shapes/fid[standard]/paper"] == 14.81
    assert table.at["dfgan", "shapes/fid[standard]/paper_source"] == "README"
    assert table.at["dfgan", "shapes/probe_acc/paper_source"] == "README (released model)"
    tex = (tmp_path / "table.tex").read_text()
    assert "(14.81)" in tex and "README (released model)" in tex and "sources:" in tex


def test_runs_on_different_splits_are_never_averaged(tmp_path):
    write_record(run_dir(tmp_path / "a", "shapes", "dfgan", 0), make_record("dfgan", 0, 10.0, 0.5))
    write_record(
        run_dir(tmp_path / "b", "shapes", "dfgan", 1), make_record("dfgan", 1, 50.0, 0.9, sha="b" * 64)
    )
    report = build_report(tmp_path)
    table = report.table.set_index("model")
    split_columns = [c for c in table.columns if c.endswith("fid[standard]/mean")]
    assert len(split_columns) == 2
    assert sorted(table.loc["dfgan", split_columns]) == [10.0, 50.0]
    assert any("2 different splits" in note for note in report.notes)
    # the plots keep them apart too: one per split, never a point at the mean 30
    names = {p.name for p in report.files}
    assert {"plot_shapes_g1_fid_vs_cost.png", "plot_shapes_g2_fid_vs_cost.png"} <= names
    assert {"plot_shapes_g1_probe_acc_vs_step.png", "plot_shapes_g2_probe_acc_vs_step.png"} <= names
    assert "plot_shapes_fid_vs_cost.png" not in names


def test_fid_modes_get_their_own_columns_and_a_note_and_quick_is_labelled(tmp_path):
    clean = make_record("dfgan", 1, 20.0, 0.6)
    clean.metrics[0].provenance["mode"] = "clean"
    quick = make_record("galip", 0, 30.0, 0.7)
    quick.protocol = {"name": "quick"}
    write_record(run_dir(tmp_path, "shapes", "dfgan", 0), make_record("dfgan", 0, 10.0, 0.5))
    write_record(run_dir(tmp_path, "shapes", "dfgan", 1), clean)
    write_record(run_dir(tmp_path, "shapes", "galip", 0), quick)
    report = build_report(tmp_path)
    table = report.table.set_index("model")
    assert table.at["dfgan", "shapes[paper]/fid[standard]/mean"] == 10.0  # never averaged with the clean 20
    assert table.at["dfgan", "shapes[paper]/fid[clean]/mean"] == 20.0
    assert table.at["galip", "shapes[quick]/fid[standard]/mean"] == 30.0
    assert any("FID in modes clean, standard" in note for note in report.notes)
    assert "shapes[quick]" in (tmp_path / "table.md").read_text(encoding="utf-8")


def test_plots_are_written(runs):
    report = build_report(runs)
    names = {p.name for p in report.files}
    assert "plot_shapes_fid_vs_cost.png" in names
    assert "plot_shapes_probe_acc_vs_step.png" in names
    assert (runs / "plot_shapes_fid_vs_cost.png").stat().st_size > 1000


def test_record_round_trips_and_bad_folder_errors(tmp_path):
    record = make_record("dfgan", 0, 1.0, 0.5)
    path = write_record(tmp_path, record)
    assert read_record(path) == record
    with pytest.raises(T2IGanError, match="no such folder"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(T2IGanError, match="no record.json found"):
        build_report(tmp_path / "empty")


def test_costs_come_after_the_metrics_and_counts_have_no_direction(tmp_path):
    record = make_record("dfgan", 0, 30.0, 0.6)
    cost = {"backend": "t2igan", "mode": COST_MODE}
    record.metrics += [
        MetricValue("params_G", 9744131.0, None, cost, None),
        MetricValue("step_seconds", 0.07, None, cost, higher_is_better=False),
    ]
    write_record(run_dir(tmp_path, "shapes", "dfgan", 0), record)
    build_report(tmp_path)
    lines = (tmp_path / "table.md").read_text().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[-2:] == ["shapes/params_G[cost]", "shapes/step_seconds[cost] (↓)"]
    assert header.index("shapes/fid[standard] (↓)") < header.index("shapes/params_G[cost]")
    assert "9,744,131" in lines[2]
    assert "params\\_G[cost] &" in (tmp_path / "table.tex").read_text()


def test_chance_and_real_image_levels_are_noted_beside_the_table(tmp_path):
    record = make_record("dfgan", 0, 30.0, 0.6)
    probe = {"backend": "t2igan-probe", "mode": "probe", "chance": 1 / 6, "reference": 0.99}
    record.metrics.append(MetricValue("probe_main_colour", 0.4, None, probe, higher_is_better=True))
    write_record(run_dir(tmp_path, "shapes", "dfgan", 0), record)
    report = build_report(tmp_path)
    assert "shapes levels (chance / real test images): probe_main_colour 0.167 / 0.990" in report.notes
    assert "probe_main_colour 0.167 / 0.990" in (tmp_path / "table.md").read_text()
    assert report.results["prov_chance"].notna().sum() == 1


def test_runs_trained_on_other_data_are_not_averaged_either(tmp_path):
    for seed, (train, fid) in enumerate((("c" * 64, 10.0), ("d" * 64, 50.0))):
        record = make_record("dfgan", seed, fid, 0.5)
        record.split = {**record.split, "train": {"sha256": train}}
        write_record(run_dir(tmp_path, "shapes", "dfgan", seed), record)
    report = build_report(tmp_path)
    columns = [c for c in report.table.columns if c.endswith("fid[standard]/mean")]
    assert len(columns) == 2 and sorted(report.table.loc[0, columns]) == [10.0, 50.0]


def test_stand_in_weights_and_a_lowered_probe_threshold_mark_their_columns(tmp_path, monkeypatch):
    import matplotlib.axes

    titles = []
    real_set_title = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(
        matplotlib.axes.Axes, "set_title", lambda ax, t, *a, **k: titles.append(t) or real_set_title(ax, t)
    )
    stand_in = {"backend": "open_clip", "mode": "clip", "stand_in": True, "weights_note": "random CLIP"}
    lowered = {"backend": "t2igan-probe", "mode": "probe", "min_accuracy": 0.5}
    honest = {"backend": "t2igan-probe", "mode": "probe", "min_accuracy": 0.95, "stand_in": False}
    for seed in (0, 1):
        record = make_record("dfgan", seed, 30.0, 0.6)
        record.metrics += [
            MetricValue(
                "clip_score",
                0.3,
                None,
                stand_in if seed == 0 else {**stand_in, "stand_in": False},
                higher_is_better=True,
            ),
            MetricValue("probe_main_colour", 0.4, None, lowered, higher_is_better=True),
            MetricValue("probe_fd", 20.0, None, honest, higher_is_better=False),
        ]
        write_record(run_dir(tmp_path, "shapes", "dfgan", seed), record)
    report = build_report(tmp_path)
    header = [c.strip() for c in (tmp_path / "table.md").read_text().splitlines()[0].strip("|").split("|")]
    # one stand-in seed is enough to mark the mean; the honest column stays unmarked
    assert "shapes/clip_score[clip]† (↑)" in header
    assert "shapes/probe_main_colour[probe]† (↑)" in header
    assert "shapes/probe_fd[probe] (↓)" in header
    notes = "\n".join(report.notes)
    assert "† shapes/clip_score[clip]: stand-in weights (random CLIP)" in notes
    assert "min_accuracy 0.5 (< 0.95)" in notes and "probe_fd" not in notes
    assert "shapes/probe_fd[probe]/caveat" not in report.table.columns
    assert "stand-in weights" in report.table.loc[0, "shapes/clip_score[clip]/caveat"]
    assert r"clip\_score[clip]$^\dagger$ $\uparrow$" in (tmp_path / "table.tex").read_text()
    # the plots say it too
    clip_title = next(t for t in titles if "clip_score vs inference cost" in t)
    assert "† stand-in weights (random CLIP)" in clip_title
    assert not any("†" in t for t in titles if "fid vs inference cost" in t)


def test_a_score_that_some_models_optimise_under_the_same_encoder_is_noted(tmp_path):
    clip, other_clip = "c" * 64, "e" * 64
    for model, optimises, encoder in (("galip", ["clip_score"], clip), ("dfgan", [], "d" * 64)):
        record = make_record(model, 0, 30.0, 0.6)
        record.optimises, record.text_encoder = optimises, {"name": "clip", "weights_sha256": encoder}
        for name, sha in (("clip_score", clip), ("clip_score_second", other_clip)):
            provenance = {"backend": "open_clip", "mode": "clean", "extractor_sha256": sha}
            record.metrics.append(MetricValue(name, 0.3, None, provenance, higher_is_better=True))
        write_record(run_dir(tmp_path, "shapes", model, 0), record)
    notes = [n for n in build_report(tmp_path).notes if "optimise" in n]
    assert len(notes) == 1 and notes[0].startswith("shapes/clip_score: galip optimise this score's quantity")
    assert f"sha256 {clip[:12]}" in notes[0]  # under another CLIP (the second column) it is a fair score
