"""Codec registry. Modules are imported on first use, so `ziplab compress -c huffman`
never pays for importing torch."""

from __future__ import annotations

import importlib

from ..errors import UnknownCodecError
from .base import Codec

# name -> module that defines CODEC
_MODULES: dict[str, str] = {
    "store": "ziplab.codecs.store",
    "huffman": "ziplab.codecs.huffman",
    "lz77": "ziplab.codecs.lz77",
    "lzss": "ziplab.codecs.lzss",
    "lzh": "ziplab.codecs.lzh",
    "ctx": "ziplab.codecs.ctx",
    "nn": "ziplab.codecs.nn",
    "mix": "ziplab.codecs.mix",
    "lm": "ziplab.codecs.lm",
}
_loaded: dict[str, Codec] = {}


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Codec:
    if name not in _MODULES:
        raise UnknownCodecError(f"unknown codec {name!r} (known: {', '.join(_MODULES)})")
    if name not in _loaded:
        _loaded[name] = importlib.import_module(_MODULES[name]).CODEC
    return _loaded[name]


__all__ = ["Codec", "get", "names"]
