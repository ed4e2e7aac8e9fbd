"""Reads the official metadata pickles (filenames, class_info, captions) without running code from them.

A pickle may call any importable function while loading; ours accept only plain containers and a
few value-only stand-ins. What the official files need (inspected with pickletools, not loaded):
- `filenames.pickle`: protocol 0, a list of unicode strings; no globals.
- `captions*.pickle` (DF-GAN/AttnGAN `pickle.dump(..., protocol=2)`): lists of int lists and two
  dicts; no globals.
- `class_info.pickle` (the StackGAN/AttnGAN birds metadata, a Python 2 protocol-0 pickle): a list of
  numpy int64 scalars, i.e. the globals `numpy.core.multiarray.scalar` and `numpy.dtype`. They are
  replaced here by stand-ins that decode the stored bytes into a Python int or float; numpy is
  never called. `_codecs.encode(text, "latin1")` (how Python 3 protocol 2 writes bytes) is
  likewise replaced by a value-only stand-in.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any

from t2igan.errors import T2IGanError

PLAIN_TYPES = (list, tuple, dict, str, bytes, int, float, bool, type(None))

# numpy dtype codes we decode: kind, byte size -> struct format (without byte order).
_NUMERIC_CODES = {
    "b1": "?",
    "i1": "b",
    "i2": "h",
    "i4": "i",
    "i8": "q",
    "u1": "B",
    "u2": "H",
    "u4": "I",
    "u8": "Q",
    "f4": "f",
    "f8": "d",
}


class UnsafePickleError(T2IGanError):
    """A pickle that asks for something other than plain data (a global, a persistent id)."""


class _DTypeStandIn:
    """Records a numpy dtype's code and byte order; nothing else is accepted."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        code = code.decode("latin1") if isinstance(code, bytes) else code
        if code not in _NUMERIC_CODES:
            raise UnsafePickleError(f"numpy dtype {code!r} is not a plain number type")
        self.code = code
        self.byteorder = "<"

    def __setstate__(self, state: Any) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else "<"
        order = order.decode("latin1") if isinstance(order, bytes) else order
        self.byteorder = ">" if order == ">" else "<"  # '|' (one byte) and '=' read as little-endian


def _scalar_standin(dtype: Any, data: Any = b"") -> int | float | bool:
    if not isinstance(dtype, _DTypeStandIn):
        raise UnsafePickleError("numpy scalar without a plain numeric dtype")
    raw = data.encode("latin1") if isinstance(data, str) else data
    if not isinstance(raw, bytes):
        raise UnsafePickleError("numpy scalar payload is not bytes")
    fmt = dtype.byteorder + _NUMERIC_CODES[dtype.code]
    if len(raw) != struct.calcsize(fmt):
        raise UnsafePickleError(f"numpy scalar of dtype {dtype.code} has {len(raw)} bytes")
    return struct.unpack(fmt, raw)[0]


def _encode_standin(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only accepted as (str, 'latin1'), how pickle writes bytes")
    return text.encode("latin1")


SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "scalar"): _scalar_standin,
    ("numpy._core.multiarray", "scalar"): _scalar_standin,
    ("numpy", "dtype"): _DTypeStandIn,
    ("_codecs", "encode"): _encode_standin,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose only reachable callables are the stand-ins of SAFE_GLOBALS."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        raise UnsafePickleError(
            f"refused to load global {module}.{name}: expected only lists, tuples, dicts, strings, bytes, "
            "numbers, bools and None"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: expected plain data only")


def safe_loads(data: bytes, encoding: str = "ASCII", source: str = "<bytes>") -> Any:
    """Unpickle `data` allowing plain data only; `encoding` as in pickle.load (py2 strings)."""
    try:
        value = RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{source}: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        AttributeError,
        UnicodeDecodeError,
        struct.error,
    ) as exc:
        raise T2IGanError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    _check_plain(value, source)
    return value


def safe_load(path: str | os.PathLike, encoding: str = "ASCII") -> Any:
    """Read the pickle at `path` with the restricted unpickler; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise T2IGanError(f"{path}: no such file")
    return safe_loads(path.read_bytes(), encoding=encoding, source=str(path))


def _check_plain(value: Any, source: str) -> None:
    """A stand-in left unconverted (e.g. a bare dtype) is not plain data: refuse it too."""
    stack = [value]
    while stack:
        item = stack.pop()
        if not isinstance(item, PLAIN_TYPES):
            raise UnsafePickleError(f"{source}: holds a {type(item).__name__}, expected plain data only")
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
