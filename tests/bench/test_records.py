"""Reading run records: what a reader is told about a file it cannot use."""

from __future__ import annotations

import json

import pytest

from t2igan.bench.records import SCHEMA_VERSION, RunRecord, read_record, write_record
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
