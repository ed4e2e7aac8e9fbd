"""Reading run records: what a reader is told about a file it cannot use."""

from __future__ import annotations

import json
import subprocess

import pytest

from t2igan.benchmarking.records import SCHEMA_VERSION, RunRecord, read_record, write_record
from t2igan.errors import T2IGanError


def test_a_record_round_trips(tmp_path):
    record = RunRecord("plan", "shapes", "dfgan", 1, status="finished", budget={"name": "smoke", "steps": 3})
    path = write_record(tmp_path, record)
    assert read_record(path) == record


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema_version": SCHEMA_VERSION + 1}, rf"schema_version {SCHEMA_VERSION + 1}, this t2igan reads"),
        ({"metrics": [{"name": "fid", "value": 1.0, "unit": "x"}]}, "malformed run record"),
        ({"written_by_a_newer_t2igan": 1}, None),
    ],
)
def test_a_record_that_cannot_be_read_names_its_file(tmp_path, change, message):
    data = {**RunRecord("plan", "shapes", "dfgan", 0).as_dict(), **change}
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    if message is None:  # unknown top-level keys are ignored (a newer writer may add some)
        assert read_record(path) == RunRecord("plan", "shapes", "dfgan", 0)
        return
    with pytest.raises(T2IGanError, match=rf"{path}: {message}"):
        read_record(path)


def test_git_state_names_only_the_checkout_t2igan_is_at_the_top_of(tmp_path):
    from t2igan.benchmarking.records import _git_state

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "tracked.txt").write_text("a")
    git("add", "tracked.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert _git_state(tmp_path) == (head, False)
    (tmp_path / "tracked.txt").write_text("b")
    assert _git_state(tmp_path) == (head, True)
    inside = tmp_path / "venv" / "lib" / "site-packages"  # an installed copy inside another repository
    inside.mkdir(parents=True)
    assert _git_state(inside) == (None, None)


def test_a_version_1_record_is_read_with_fids_source_of_statistics_moved(tmp_path):
    data = RunRecord("plan", "cub", "dfgan", 0, status="finished").as_dict()
    data["schema_version"] = 1
    data["metrics"] = [
        {"name": "fid", "value": 20.0, "provenance": {"mode": "paper", "reference": "test split"}},
        {"name": "probe_colour", "value": 0.9, "provenance": {"mode": "probe", "reference": 0.99}},
    ]
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    record = read_record(path)
    assert record.schema_version == SCHEMA_VERSION == 2
    fid, probe = (m.provenance for m in record.metrics)
    assert fid == {"mode": "paper", "reference_source": "test split"}
    assert probe["reference"] == 0.99  # a number stays where it was
