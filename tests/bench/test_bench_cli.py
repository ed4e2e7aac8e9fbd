"""`t2igan bench` end to end, driven as a user drives it: a tiny `shapes` plan with a built-in model, a
third-party model and a model that diverges, two seeds; then re-running, and resuming a killed run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from t2igan.benchmarking.claims import RunClaim
from tests.conftest import ROOT, TINY_ENCODER_SETTINGS, run_cli

TINY_SETTINGS = '\ndata = ["shapes:size=tiny"]\nprotocol = "quick"\n' + TINY_ENCODER_SETTINGS


def write_plan(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(body + TINY_SETTINGS, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory) -> dict[str, str]:
    """One cache for the module: the encoders and probe are trained by the first bench, reused after.
    One thread in every bench: a killed run resumes exactly only at the setting it started with."""
    return {"T2IGAN_CACHE": str(tmp_path_factory.mktemp("cache")), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def finished_plan(tmp_path_factory, cache_env, third_party_plugins):
    folder = tmp_path_factory.mktemp("bench")
    plan = write_plan(
        folder,
        "two-models",
        'models = ["dfgan", "example", "dfgan:magp_weight=nan"]\nseeds = [0, 1]\nsteps = 4\n'
        "eval_every = 2\neval_every_images = 32\n",
    )
    out = folder / "out"
    first = run_cli("bench", str(plan), "--out", str(out), env=cache_env)
    return out, first, plan


def test_plan_writes_records_tables_and_grids(finished_plan):
    out, result, _ = finished_plan
    assert result.returncode == 1, result.stderr[-3000:]  # one model of the plan failed: exit 1
    assert "4 of 6 run(s) finished" in result.stdout
    for model in ("dfgan", "example"):
        for seed in (0, 1):
            run = out / "shapes_size=tiny" / model / f"seed{seed}"
            record = json.loads((run / "record.json").read_text())
            assert record["status"] == "finished"
            assert record["budget"]["steps"] == 4 and record["costs"]["steps"] == 4
            assert (run / "train" / "samples" / "final.png").is_file()
            assert record["split"]["sha256"] and record["text_encoder"]["name"] == "damsm"
            assert record["protocol"]["name"] == "quick" and record["protocol"]["resolution"] == 32
            assert record["costs"]["parameters"]["G"]["trainable"] > 0
    steps = [h["step"] for h in record["history"] if h["metric"] == "probe"]
    assert steps == [2, 4]  # evaluated during training (eval_every = 2)
    assert (out / "plot_shapes_size=tiny_probe_vs_step.png").is_file()
    plan = json.loads((out / "plan.json").read_text())
    assert plan["models"] == ["dfgan", "example", "dfgan:magp_weight=nan"]


def test_failing_model_is_recorded_and_the_plan_goes_on(finished_plan):
    out, result, _ = finished_plan
    for seed in (0, 1):
        record = json.loads(
            (out / "shapes_size=tiny" / "dfgan_magp_weight=nan" / f"seed{seed}" / "record.json").read_text()
        )
        assert record["status"] == "failed"
        assert "TrainingDiverged" in record["error"] and "non-finite" in record["error"]
    assert "FAILED shapes:size=tiny dfgan:magp_weight=nan seed 0" in result.stdout


def test_csv_rows_columns_and_mean_std_match_the_records(finished_plan):
    out, _, _ = finished_plan
    results = pd.read_csv(out / "results.csv")
    finished = results[results["status"] == "finished"]
    assert set(finished["model"]) == {"dfgan", "example"}
    assert {"probe", "probe_fd", "clip_score", "images_per_second"} <= set(finished["metric"])
    assert set(results[results["status"] == "failed"]["model"]) == {"dfgan:magp_weight=nan"}

    table = pd.read_csv(out / "table.csv").set_index("model")
    column = next(c for c in table.columns if c.endswith("/clip_score[clean]/mean"))
    for model in ("dfgan", "example"):
        values = [
            next(m["value"] for m in json.loads(p.read_text())["metrics"] if m["name"] == "clip_score")
            for p in sorted((out / "shapes_size=tiny" / model).glob("seed*/record.json"))
        ]
        assert len(values) == 2
        assert table.loc[model, column] == pytest.approx(sum(values) / 2)
        std = pd.Series(values).std(ddof=1)
        assert table.loc[model, column.replace("/mean", "/std")] == pytest.approx(std)
        assert table.loc[model, column.replace("/mean", "/n")] == 2
    assert (out / "table.md").read_text().count("| dfgan |") == 1
    assert "\\toprule" in (out / "table.tex").read_text()


def test_second_invocation_skips_finished_runs(finished_plan, cache_env):
    out, _, plan = finished_plan
    record = out / "shapes_size=tiny" / "dfgan" / "seed0" / "record.json"
    before = record.stat().st_mtime_ns
    again = run_cli("bench", str(plan), "--out", str(out), env=cache_env)
    assert "dfgan / seed 0: finished earlier, skipped" in again.stderr
    assert record.stat().st_mtime_ns == before
    # the failed runs are tried again, and fail again for the same reason
    assert again.returncode == 1 and "4 of 6 run(s) finished" in again.stdout


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, cache_env, finished_plan):
    plan = write_plan(
        tmp_path, "resume", 'models = ["dfgan"]\nseeds = [3]\nsteps = 60\ncheckpoint_every = 2\n'
    )
    out = tmp_path / "out"
    train = out / "shapes_size=tiny" / "dfgan" / "seed3" / "train"
    process = subprocess.Popen(
        [sys.executable, "-m", "t2igan", "bench", str(plan), "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **cache_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(train.glob("step*.pt")):
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(train.glob("step*.pt"))
    assert saved, "no checkpoint was written before the kill"
    assert not (train / "final.pt").exists()
    result = run_cli("bench", str(plan), "--out", str(out), env=cache_env)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((train.parent / "record.json").read_text())
    assert record["status"] == "finished"
    assert record["costs"]["resumed_from"] >= 2 and record["costs"]["steps"] == 60
    # the killed process's claim went with it: the next process says whose run it took over
    assert f"taking over from {socket.gethostname()} pid {process.pid} since " in result.stderr


def _finished(run: Path) -> bool:
    try:
        return json.loads((run / "record.json").read_text())["status"] == "finished"
    except (OSError, ValueError):
        return False


def _quality(out: Path) -> pd.DataFrame:
    """The results the tables are made of, less the measured costs (times differ from run to run)."""
    results = pd.read_csv(out / "results.csv")
    kept = results[results["prov_mode"] != "cost"][["model", "seed", "metric", "value"]]
    return kept.sort_values(["model", "seed", "metric"]).reset_index(drop=True)


def test_three_processes_on_one_plan_train_each_run_once(tmp_path, cache_env, finished_plan):
    plan = write_plan(tmp_path, "shared", 'models = ["dfgan"]\nseeds = [0, 1, 2, 3]\nsteps = 4\n')
    out = tmp_path / "out"
    runs = {seed: out / "shapes_size=tiny" / "dfgan" / f"seed{seed}" for seed in range(4)}
    held = RunClaim(runs[0])  # this test holds run 1 while the processes start: each must pass it by
    assert held.acquire()
    logs = [tmp_path / f"process{n}.log" for n in range(3)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "t2igan", "bench", str(plan), "--out", str(out)],
            cwd=ROOT,
            env={**os.environ, **cache_env},
            stdout=subprocess.DEVNULL,
            stderr=log.open("w", encoding="utf-8"),
        )
        for log in logs
    ]
    try:
        deadline = time.time() + 600
        # every process has trained what it could and waits for run 1, which only this test holds
        while time.time() < deadline and not (
            all(_finished(runs[seed]) for seed in (1, 2, 3))
            and all("waiting for" in log.read_text() for log in logs)
        ):
            assert all(p.poll() is None for p in processes), [log.read_text()[-2000:] for log in logs]
            time.sleep(0.5)
        held.release()
        codes = [p.wait(timeout=600) for p in processes]
    finally:
        held.release()
        for process in processes:
            process.kill()
    said = [log.read_text(encoding="utf-8") for log in logs]
    assert codes == [0, 0, 0], [text[-2000:] for text in said]
    me = f"claimed by {socket.gethostname()} pid {os.getpid()} since "
    assert all(me in text for text in said)  # every process found run 1 held, and went on
    for seed, folder in runs.items():
        label = f"shapes:size=tiny / dfgan / seed {seed}: starting"
        assert sum(text.count(label) for text in said) == 1, seed  # trained by exactly one process
        steps = [
            json.loads(line)["step"] for line in (folder / "train" / "log.jsonl").read_text().splitlines()
        ]
        assert steps == sorted(set(steps)) and steps[-1] == 4  # each step once
        record = json.loads((folder / "record.json").read_text())
        assert record["status"] == "finished" and record["costs"]["resumed_from"] == 0
    alone = tmp_path / "alone"
    single = run_cli("bench", str(plan), "--out", str(alone), env=cache_env)
    assert single.returncode == 0, single.stderr[-3000:]
    pd.testing.assert_frame_equal(_quality(out), _quality(alone))
    assert len(_quality(out)) == 4 * len(set(_quality(out)["metric"]))


def test_bad_flags_are_one_line_errors():
    result = run_cli("bench", "--seeds", "a,b")
    assert result.returncode == 2
    assert "--seeds 'a,b': expected comma-separated integers" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_dataset_folder_stops_the_plan_before_any_run(tmp_path):
    env = {"T2IGAN_DATA": "", "T2IGAN_CUB_ROOT": "", "T2IGAN_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "runs"
    result = run_cli("bench", "--models", "dfgan,galip", "--data", "shapes,cub", "--out", str(out), env=env)
    assert result.returncode == 2, result.stderr
    assert "dataset 'cub': no root folder given" in result.stderr
    assert "--root cub=DIR" in result.stderr
    assert not out.exists()  # nothing trained, not even the shapes runs listed first
    # --emit-commands does not need the data here: the jobs may run on a machine that has it
    emitted = run_cli("bench", "--models", "dfgan", "--data", "cub", "--emit-commands", env=env)
    assert emitted.returncode == 0, emitted.stderr
    assert "--data cub" in emitted.stdout


def test_nproc_runs_the_plan_under_torchrun_and_a_diverged_run_does_not_stall_it(
    tmp_path, cache_env, finished_plan
):
    # the diverging row comes first: both processes must see its NaN at the same step and go on together
    plan = write_plan(
        tmp_path,
        "ddp",
        'models = ["dfgan:magp_weight=nan", "dfgan"]\nseeds = [0]\nsteps = 4\neval_every = 2\n',
    )
    out = tmp_path / "out"
    result = run_cli("bench", str(plan), "--nproc", "2", "--out", str(out), env=cache_env)
    assert result.returncode == 1, result.stderr[-3000:]  # one failed run
    assert result.stdout.count("1 of 2 run(s) finished") == 1 and "2 process(es)" in result.stderr
    failed = json.loads(
        (out / "shapes_size=tiny" / "dfgan_magp_weight=nan" / "seed0" / "record.json").read_text()
    )
    assert failed["status"] == "failed" and "non-finite" in failed["error"]
    run = out / "shapes_size=tiny" / "dfgan" / "seed0"
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "finished" and record["costs"]["processes"] == 2
    assert {m["name"] for m in record["metrics"]} >= {"probe", "probe_fd"}
    steps = [json.loads(line)["step"] for line in (run / "train" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 4
    assert sorted({h["step"] for h in map(json.loads, (run / "history.jsonl").read_text().splitlines())}) == [
        2,
        4,
    ]
