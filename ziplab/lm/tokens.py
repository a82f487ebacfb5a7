"""Bytes <-> token ids, exactly: what lets a token-level language model code any file.

A compressor must give back every byte, so a tokenizer is used only where its round trip is
exact. Two kinds qualify:

- `ByteTokens`: ids are the bytes themselves (the lab's models; 256 = BOS), trivially exact.
- `BpeTokens`: a byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM). Every vocabulary entry stands
  for a fixed byte string (its characters map back through GPT-2's byte<->unicode table), so ids
  decode by concatenation, with no normalisation or space clean-up in between. Text is split
  at bytes that are not UTF-8 (the tokenizer takes `str`); each such byte becomes its own
  single-byte token. Encoding is then checked by decoding: a tokenizer whose normaliser or
  pre-tokenizer changes the text fails that check and the file is refused with the reason.

Anything else (SentencePiece, WordPiece, a BPE without byte-level decoding) is refused when the
model is loaded: its ids do not name byte strings.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Protocol

import numpy as np

from ..errors import ZiplabError
from ..models.predictor import BOS


#: the lone surrogates U+DC80..U+DCFF that `surrogateescape` decoding makes of non-UTF-8 bytes
_ESCAPED = re.compile("([\udc80-\udcff]+)")


class TokenizerError(ZiplabError):
    """A tokenizer that cannot code a file exactly (or at all)."""


class Tokens(Protocol):
    """What coding and scoring need from a tokenizer."""

    #: output symbols the model predicts (ids are 0..vocab-1)
    vocab: int
    #: the id fed before the first token (BOS, or a stand-in the model knows)
    start: int

    def encode(self, data: bytes) -> np.ndarray: ...

    def decode(self, ids: np.ndarray) -> bytes: ...

    @property
    def sha256(self) -> str: ...


class ByteTokens:
    """Identity: a byte is its own id; the model's vocabulary is the 256 bytes, BOS = 256."""

    vocab = 256
    start = BOS

    def encode(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64)

    def decode(self, ids: np.ndarray) -> bytes:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() > 255):
            raise TokenizerError("a byte-level model produced an id outside 0..255")
        return ids.astype(np.uint8).tobytes()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(b"ziplab byte tokens: id = byte, 256 = BOS").hexdigest()


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of the 256 bytes to printable characters (the ByteLevel alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def _has_type(node: Any, kind: str) -> bool:
    """Whether a tokenizer.json component (possibly a Sequence of them) contains `kind`."""
    if not isinstance(node, dict):
        return False
    if node.get("type") == kind:
        return True
    return any(_has_type(part, kind) for key in ("pretokenizers", "decoders", "normalizers")
               for part in node.get(key, []) or [])


class BpeTokens:
    """A byte-level BPE from the `tokenizers` library, made exact (see the module docstring)."""

    def __init__(self, tokenizer: Any, start: int, files_sha256: str, vocab: int | None = None) -> None:
        spec = json.loads(tokenizer.to_str())
        kind = (spec.get("model") or {}).get("type")
        if not _has_type(spec.get("decoder"), "ByteLevel"):
            raise TokenizerError(f"the tokenizer ({kind or 'unknown'} model) does not decode byte-level, so its ids do "
                                 "not name byte strings and its round trip is not exact for every file; "
                                 "ziplab codes with byte-level BPE tokenizers only")
        self._tok = tokenizer
        self.sha256_files = files_sha256
        table = tokenizer.get_vocab(with_added_tokens=True)
        size = max(table.values()) + 1 if table else 0
        self.vocab = max(size, vocab or 0)
        if not 0 <= start < self.vocab:
            raise TokenizerError(f"start token {start} is outside the vocabulary of {self.vocab}")
        self.start = int(start)
        back = {c: b for b, c in byte_to_unicode().items()}
        added = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
        pieces: list[bytes | None] = [None] * self.vocab
        for text, i in table.items():
            if text in added:
                pieces[i] = text.encode("utf-8")
            elif all(c in back for c in text):
                pieces[i] = bytes(back[c] for c in text)
        self._pieces = pieces
        # a byte that is not UTF-8 is coded as its one-byte token
        self._byte_id = {p[0]: i for i, p in enumerate(pieces) if p is not None and len(p) == 1}

    @property
    def sha256(self) -> str:
        return self.sha256_files

    def encode(self, data: bytes) -> np.ndarray:
        """Token ids whose concatenated byte strings are exactly `data` (checked). One pass:
        `surrogateescape` turns each byte that is not UTF-8 into a lone surrogate, which splits
        the text into runs the tokenizer encodes in one batch."""
        text = data.decode("utf-8", "surrogateescape")
        parts = _ESCAPED.split(text)  # text, escaped bytes, text, ... (odd items are escapes)
        runs = [part for part in parts[0::2] if part]
        encoded = iter(self._tok.encode_batch(runs, add_special_tokens=False)) if runs else iter(())
        ids: list[int] = []
        offset = 0
        for k, part in enumerate(parts):
            if k % 2 == 0:
                if part:
                    ids.extend(next(encoded).ids)
                    offset += len(part.encode("utf-8"))
                continue
            for ch in part:
                b = ord(ch) - 0xDC00
                if b not in self._byte_id:
                    raise TokenizerError(f"byte 0x{b:02x} at offset {offset} is not UTF-8 text and the vocabulary "
                                         "has no single-byte token for it")
                ids.append(self._byte_id[b])
                offset += 1
        out = np.array(ids, dtype=np.int64)
        back = self.decode(out)
        if back != data:
            at = next((i for i, (a, b) in enumerate(zip(back, data)) if a != b), min(len(back), len(data)))
            raise TokenizerError(f"the tokenizer does not give this file back exactly (first difference at byte {at}: "
                                 "its normaliser or pre-tokenizer changes the text), so it cannot code it losslessly")
        return out

    def decode(self, ids: np.ndarray) -> bytes:
        pieces = self._pieces
        out = []
        for i in np.asarray(ids, dtype=np.int64).tolist():
            piece = pieces[i] if 0 <= i < len(pieces) else None
            if piece is None:
                raise TokenizerError(f"token id {i} stands for no byte string in this tokenizer")
            out.append(piece)
        return b"".join(out)

