"""The restricted unpickler: plain data and the official metadata pickles load; anything that would run
code is refused before it runs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from t2igan.data.safe_pickle import UnsafePickleError, safe_load, safe_loads
from t2igan.errors import T2IGanError
from tests.layouts import py2_class_info_bytes


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evaluates:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def test_plain_data_round_trips_for_every_protocol():
    value = [["a", "b"], {"<end>": 0, "bird": 1}, {0: "<end>"}, (1, 2.5, None, True), b"\x00\xff", -7]
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert safe_loads(pickle.dumps(value, protocol=protocol)) == value


def test_official_captions_pickle_layout_loads(tmp_path):
    # DF-GAN code/lib/datasets.py writes [train_caps, test_caps, ixtoword, wordtoix] with protocol=2
    payload = [
        [[1, 2], [3]],
        [[2, 3]],
        {0: "<end>", 1: "a", 2: "bird", 3: "flies"},
        {"<end>": 0, "a": 1, "bird": 2, "flies": 3},
    ]
    path = tmp_path / "captions_DAMSM.pickle"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    assert safe_load(path) == payload


def test_py2_class_info_with_numpy_scalars_loads_as_ints(tmp_path):
    ids = [1, 1, 1, 2, 2, 200]
    data = py2_class_info_bytes(ids)
    # the fixture is faithful: numpy itself reads it as int64 scalars
    assert [int(v) for v in pickle.loads(data, encoding="bytes")] == ids
    path = tmp_path / "class_info.pickle"
    path.write_bytes(data)
    loaded = safe_load(path, encoding="bytes")
    assert loaded == ids and all(type(v) is int for v in loaded)


def test_numpy_scalars_of_python3_pickles_load_as_numbers():
    value = [np.int64(-3), np.float32(1.5), np.uint8(255), np.bool_(True)]
    assert safe_loads(pickle.dumps(value, protocol=2)) == [-3, 1.5, 255, True]
    assert safe_loads(pickle.dumps(value, protocol=5)) == [-3, 1.5, 255, True]


def test_malicious_reduce_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps(["ok", _RunsShell(marker)], protocol=2))
    with pytest.raises(UnsafePickleError) as info:
        safe_load(path)
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message and "system" in message and "expected only lists" in message


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_builtins_eval_is_refused(protocol):
    with pytest.raises(UnsafePickleError, match="eval"):
        safe_loads(pickle.dumps(_Evaluates(), protocol=protocol))


def test_numpy_arrays_and_object_dtypes_are_refused():
    with pytest.raises(UnsafePickleError):
        safe_loads(pickle.dumps(np.arange(3), protocol=2))  # needs numpy.core.multiarray._reconstruct
    crafted = pickle.dumps([np.int64(1)], protocol=0).replace(b"i8", b"O8")
    with pytest.raises(T2IGanError):
        safe_loads(crafted)


def test_persistent_ids_are_refused():
    import io

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "x" else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(["x"])
    with pytest.raises(UnsafePickleError, match="persistent"):
        safe_loads(buffer.getvalue())


def test_truncated_and_missing_files_name_the_file(tmp_path):
    path = tmp_path / "test" / "filenames.pickle"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(["a", "b", "c"], protocol=2)[:-5])
    with pytest.raises(T2IGanError, match="not a readable pickle") as info:
        safe_load(path)
    assert str(path) in str(info.value)
    with pytest.raises(T2IGanError, match="no such file"):
        safe_load(tmp_path / "absent.pickle")
