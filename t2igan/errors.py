"""Errors a user sees: each names the file, key or flag at fault and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class T2IGanError(Exception):
    """Base class of every error the CLI reports as one clean line instead of a traceback."""


class T2IGanWarning(UserWarning):
    """Base class of the warnings written by t2igan itself: the CLI shows each as one line."""


class UnknownNameError(T2IGanError, KeyError):
    """A name that no plugin registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        close = difflib.get_close_matches(self.name, self.known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        known = ", ".join(self.known) if self.known else "(none registered)"
        return f"unknown {self.kind} {self.name!r}.{hint} Known {self.kind}s: {known}"


class RegistrationError(T2IGanError):
    """A plugin registered something malformed (duplicate name, missing field, wrong type)."""


class ConfigError(T2IGanError):
    """A flag, override or configuration key with a value we cannot use."""


class WeightsNotFoundError(T2IGanError):
    """Weights that are neither at a configured path, under $T2IGAN_WEIGHTS, nor downloadable."""
