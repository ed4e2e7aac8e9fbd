"""Atomic writes: a failed write leaves the earlier file as it was and no temporary file behind."""

from __future__ import annotations

import json

import pytest
import torch

from t2igan.atomic import torch_save_atomic, write_atomic, write_json_atomic, write_text_atomic


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "record.json"
    write_json_atomic(target, {"step": 1})

    def half_then_fail(handle):
        handle.write(b'{"step": ')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_atomic(target, half_then_fail)
    assert json.loads(target.read_text()) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_json_text_and_torch_round_trip_into_new_folders(tmp_path):
    path = write_json_atomic(tmp_path / "a" / "b.json", {"path": tmp_path, "n": 2}, sort_keys=True)
    assert json.loads(path.read_text()) == {"n": 2, "path": str(tmp_path)}
    assert path.read_text().endswith("}\n")
    assert write_text_atomic(tmp_path / "t.csv", "a,b\n1,2\n").read_text() == "a,b\n1,2\n"
    saved = torch_save_atomic({"w": torch.arange(3)}, tmp_path / "c" / "w.pt")
    assert torch.equal(torch.load(saved, weights_only=True)["w"], torch.arange(3))
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = write_text_atomic(tmp_path / "atomic.txt", "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
