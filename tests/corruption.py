"""Test helpers shared by the classic codecs' tests: round trips, corrupt-payload generators,
the decode-never-crashes check, and one NUMBA_BOUNDSCHECK subprocess run for all of them.

:func:`boundscheck_report` runs :func:`_boundscheck_main` once per session in a subprocess with
numba bounds checking on: round trips and corrupt payloads for every classic codec, one
``<codec> ok`` line per codec that passed (``<codec> FAILED`` and the traceback otherwise), so
each codec's test asserts its own line from a single shared run.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np

from ziplab.codecs import get
from ziplab.errors import CorruptDataError

try:
    from .conftest import SAMPLES
except ImportError:  # tests/ is not a package (or this runs as a script): conftest is on sys.path
    from conftest import SAMPLES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOUNDSCHECK_CODECS = ("huffman", "lzh", "lz77", "lzss")


def roundtrip(name: str, raw: bytes, level: int | None = None) -> bytes:
    """Encode and decode ``raw`` with codec ``name``; checks max_ratio, dtype, shape, bytes."""
    codec = get(name)
    data = np.frombuffer(raw, np.uint8)
    encoder = codec.open_encoder(level)
    payload = encoder.encode(data)
    assert len(raw) <= codec.max_ratio * max(len(payload), 1)
    out = codec.open_decoder(encoder.params).decode(payload, len(raw))
    assert out.dtype == np.uint8 and out.shape == (len(raw),)
    assert out.tobytes() == raw
    return payload


def corrupt_variants(
    payload: bytes,
    seed: int,
    cuts: int = 25,
    noise: tuple[int, ...] = (1, 2, 7, 64, 500),
    fills: bool = False,
    appended: bool = False,
) -> list[bytes]:
    """Damaged copies of ``payload``: up to ``cuts`` truncations, 40 with 1-3 flipped bits,
    random bytes of each ``noise`` length; ``fills`` adds 300 zero and 300 0xff bytes,
    ``appended`` the payload with one zero byte and with its first 7 bytes after it."""
    rng = np.random.default_rng(seed)
    out = [payload[:k] for k in sorted(set(np.linspace(0, len(payload) - 1, cuts).astype(int)))]
    for _ in range(40):
        b = bytearray(payload)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
        out.append(bytes(b))
    for n in noise:
        out.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    if fills:
        out += [bytes(300), b"\xff" * 300]
    if appended:
        out += [payload + b"\x00", payload + payload[:7]]
    return out


#: corrupt_variants settings per codec (each codec's tests have always used these)
VARIANTS: dict[str, dict] = {
    "huffman": {},
    "lzh": {"noise": (1, 2, 7, 64, 500, 5000), "fills": True},
    "lz77": {"cuts": 30, "noise": (1, 2, 3, 4, 7, 64, 500, 5000), "fills": True, "appended": True},
}
VARIANTS["lzss"] = VARIANTS["lz77"]


def codec_variants(name: str, payload: bytes, seed: int) -> list[bytes]:
    return corrupt_variants(payload, seed, **VARIANTS[name])


def check_decode(name: str, bad: bytes, size: int) -> None:
    """Decoding ``bad`` either raises CorruptDataError naming the codec or gives ``size`` bytes."""
    try:
        out = get(name).decode_block(bad, size, {})
    except CorruptDataError as exc:
        assert str(exc).startswith(f"{name}: ")
    else:
        assert out.dtype == np.uint8 and out.shape == (size,)


# --------------------------------------------------------------------------- bounds checking


def _boundscheck_huffman() -> None:
    c = get("huffman")
    for sample in ("text", "skewed", "one", "all256"):
        raw = SAMPLES[sample]
        p = c.encode_block(np.frombuffer(raw, np.uint8), {})
        assert c.decode_block(p, len(raw), {}).tobytes() == raw
        for bad in codec_variants("huffman", p, 7)[::3]:
            check_decode("huffman", bad, len(raw))


def _boundscheck_lzh() -> None:
    c = get("lzh")
    for sample in ("text", "skewed", "one", "zeros", "all256"):
        raw = SAMPLES[sample][:20000]
        for level in (1, 6, 9):
            p = c.encode_block(np.frombuffer(raw, np.uint8), {"level": level})
            assert c.decode_block(p, len(raw), {}).tobytes() == raw
        for bad in codec_variants("lzh", p, 3)[::3]:
            check_decode("lzh", bad, len(raw))


def _boundscheck_lz(name: str) -> None:
    codec = get(name)
    for sample in ("text", "skewed", "one", "zeros", "all256", "run_ab", "random"):
        raw = SAMPLES[sample][:20000]
        for level in (1, 6, 9):
            p = codec.encode_block(np.frombuffer(raw, np.uint8), {"level": level})
            assert codec.decode_block(p, len(raw), {}).tobytes() == raw
        for bad in codec_variants(name, p, 3)[::2]:
            check_decode(name, bad, len(raw))
    rng = np.random.default_rng(1)
    chunk = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    raw = chunk + rng.integers(0, 256, 63535, dtype=np.uint8).tobytes() + chunk
    p = codec.encode_block(np.frombuffer(raw, np.uint8), {"level": 9})
    assert codec.decode_block(p, len(raw), {}).tobytes() == raw


BOUNDSCHECK_RUNS = {
    "huffman": _boundscheck_huffman,
    "lzh": _boundscheck_lzh,
    "lz77": lambda: _boundscheck_lz("lz77"),
    "lzss": lambda: _boundscheck_lz("lzss"),
}


def _boundscheck_main() -> None:
    for name in BOUNDSCHECK_CODECS:
        try:
            BOUNDSCHECK_RUNS[name]()
        except Exception:  # reported per codec; the other codecs still run
            print(f"{name} FAILED\n{traceback.format_exc()}", flush=True)
        else:
            print(f"{name} ok", flush=True)


_SCRIPT = "import sys; sys.path.insert(0, 'tests'); import corruption; corruption._boundscheck_main()"


@functools.lru_cache(maxsize=None)
def boundscheck_report() -> tuple[dict[str, str], str]:
    """Run this module under NUMBA_BOUNDSCHECK=1 once per test session (a fresh numba cache,
    so nothing compiled without bounds checks is reused). Returns ({codec: "ok" or the
    failure text}, stderr tail); a codec missing from the dict never finished."""
    with tempfile.TemporaryDirectory(prefix="ziplab-boundscheck-") as cache:
        env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=cache)
        res = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    report: dict[str, str] = {}
    current = None
    for line in res.stdout.splitlines():
        word = line.split(" ", 1)
        if len(word) == 2 and word[0] in BOUNDSCHECK_RUNS and word[1] in ("ok", "FAILED"):
            current = word[0]
            report[current] = "ok" if word[1] == "ok" else ""
        elif current is not None and report[current] != "ok":
            report[current] += line + "\n"
    return report, f"exit status {res.returncode}\n{res.stderr[-2000:]}"


def assert_boundscheck_clean(name: str) -> None:
    """The shared bounds-checked run passed every round trip and corrupt decode for ``name``."""
    report, stderr = boundscheck_report()
    assert name in report, f"bounds-checked run never finished {name}: {stderr}"
    assert report[name] == "ok", f"{name} under NUMBA_BOUNDSCHECK=1:\n{report[name]}"
