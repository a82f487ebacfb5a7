"""Validation of header parameters read from a file: nothing in them is trusted before it is
checked here — types, ranges, lengths, required and unknown keys — so a hostile header gets a
one-line FormatError before any model is loaded, memory allocated or process started."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import FormatError

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int

    def check(self, key: str, value: Any) -> None:
        if type(value) is not int or not self.lo <= value <= self.hi:
            raise FormatError(f"header parameter {key!r} must be an integer in {self.lo}..{self.hi}")


@dataclass(frozen=True)
class Hex:
    length: int

    def check(self, key: str, value: Any) -> None:
        if not isinstance(value, str) or len(value) != self.length or not _HEX.fullmatch(value):
            raise FormatError(f"header parameter {key!r} must be {self.length} lowercase hex digits")


@dataclass(frozen=True)
class Text:
    max_len: int
    optional: bool = False
    choices: tuple[str, ...] = ()

    def check(self, key: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if not isinstance(value, str) or not 0 < len(value) <= self.max_len or not value.isprintable():
            raise FormatError(f"header parameter {key!r} must be printable text of at most {self.max_len} characters")
        if self.choices and value not in self.choices:
            raise FormatError(f"header parameter {key!r} must be one of {', '.join(self.choices)}")


@dataclass(frozen=True)
class Flat:
    """A mapping of at most `max_keys` short keys to scalars (a model config)."""

    max_keys: int

    def check(self, key: str, value: Any) -> None:
        ok = isinstance(value, dict) and len(value) <= self.max_keys and all(
            isinstance(k, str) and len(k) <= 32 and (v is None or type(v) in (int, float, str, bool))
            and k.isprintable() and (not isinstance(v, str) or (len(v) <= 64 and v.isprintable()))
            for k, v in value.items())
        if not ok:
            raise FormatError(f"header parameter {key!r} must be a small mapping of names to scalars")


def check(params: Any, schema: dict[str, Any], required: frozenset[str] | None = None) -> None:
    """Every key known, every required key present (all by default), every value valid."""
    if not isinstance(params, dict):
        raise FormatError("header parameters are not a mapping")
    unknown = sorted(set(params) - set(schema))
    if unknown:
        raise FormatError(f"unknown header parameter {unknown[0][:40]!r}")
    missing = sorted((set(schema) if required is None else required) - set(params))
    if missing:
        raise FormatError(f"header parameter {missing[0]!r} is missing")
    for key, value in params.items():
        schema[key].check(key, value)
