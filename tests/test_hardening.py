"""Hostile input and the process around it: crafted headers, decompression bombs, signals,
file metadata, several inputs, terminal escapes, and a bounded mutation fuzz over every codec.

Every crafted case must end in one ZiplabError line (exit 1 from the CLI, "ziplab: error", no
traceback), in seconds, leaving nothing behind."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab import container
from ziplab.container import Header
from ziplab.errors import FormatError, LimitError, ZiplabError

from .conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[1]
T1 = str(ROOT / "tests" / "data" / "golden" / "t1-golden.safetensors")
TEXT = SAMPLES["text"]


def zl(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ziplab", *args], capture_output=True, cwd=cwd, timeout=timeout)


def _with_params(blob: bytes, params: dict, **fields) -> bytes:
    header = container.read_header(io.BytesIO(blob))
    crafted = Header(header.codec, params, fields.get("block_size", header.block_size),
                     fields.get("original_size", header.original_size), header.crc32, version=header.version)
    return crafted.encode() + blob[header.header_size:]


def _ctx_blob() -> bytes:
    return ziplab.compress(TEXT[:4000], "ctx", 2, lanes=4)


def _nn_blob() -> bytes:
    return ziplab.compress(TEXT[:4000], "nn", model=T1, lanes=4)


def _ctx_params() -> dict:
    return container.read_header(io.BytesIO(_ctx_blob())).params


HOSTILE_CTX = {
    "empty": {},
    "level 13": {"level": 13},
    "level str": {"level": "x"},
    "level null": {"level": None},
    "level float": {"level": 2.0},
    "lanes null": {"lanes": None},
    "lanes zero": {"lanes": 0},
    "lanes 2^31": {"lanes": 2**31},
    "workers true": {"workers": True},
    "workers zero": {"workers": 0},
    "workers 255": {"workers": 255},
    "threads 100000": {"threads": 100000},
    "fingerprint": {"fingerprint": "zz"},
    "unknown key": {"evil": 1},
}


@pytest.mark.parametrize("change", list(HOSTILE_CTX.values()), ids=list(HOSTILE_CTX))
def test_hostile_ctx_params_are_one_line_format_errors(change):
    params = {**_ctx_params(), **change} if change else {}
    with pytest.raises(FormatError) as info:
        ziplab.decompress(_with_params(_ctx_blob(), params))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("change", [
    {}, {"lanes": 0}, {"substreams": 1}, {"substreams": 65}, {"model": ""}, {"model": "\x1b[31mred"},
    {"engine": 7}, {"quant_sha256": "x" * 64}, {"family": "rnn"}, {"config": {"a": [1, 2]}}, {"config": "x"},
    {"config": {str(i): i for i in range(40)}}, {"threads": 1}, {"fingerprint": "0" * 32},
], ids=lambda c: ",".join(c) or "empty")
def test_hostile_nn_params_are_one_line_format_errors(change):
    blob = _nn_blob()
    params = {**container.read_header(io.BytesIO(blob)).params, **change} if change else {}
    with pytest.raises(FormatError) as info:
        ziplab.decompress(_with_params(blob, params))
    assert "\n" not in str(info.value)


def test_deeply_nested_params_are_a_format_error_not_a_recursion_error():
    """A params JSON nested 3,000 deep, deflated, inside a header with a valid CRC."""
    import struct
    import zlib as _zlib

    params = ("{\"x\":" * 3000 + "1" + "}" * 3000).encode()
    packer = _zlib.compressobj(9, _zlib.DEFLATED, -15)
    packed = packer.compress(params) + packer.flush()
    body = container.MAGIC + bytes([1, 1, 3]) + b"ctx" + struct.pack("<H", len(packed)) + packed
    body += struct.pack("<IQI", 1 << 20, 0, 0)
    with pytest.raises(FormatError):
        ziplab.decompress(body + struct.pack("<I", _zlib.crc32(body)))


def test_claimed_size_beyond_what_the_payload_can_hold_is_refused_before_decoding():
    blob = _ctx_blob()
    header = container.read_header(io.BytesIO(blob))
    bomb = _with_params(blob, header.params, original_size=1 << 40, block_size=256 << 20) + bytes(155_000)
    t0 = time.perf_counter()
    with pytest.raises(LimitError):
        ziplab.decompress(bomb)
    assert time.perf_counter() - t0 < 5


def test_a_valid_highly_compressible_ctx_file_decodes_in_linear_time_and_small_memory():
    data = bytes(4 << 20)
    blob = ziplab.compress(data, "ctx", 2, lanes=16)
    assert len(blob) < 4096
    t0 = time.perf_counter()
    assert ziplab.decompress(blob) == data
    assert time.perf_counter() - t0 < 60


def test_decoder_process_count_is_the_decoders_choice(monkeypatch):
    """A file's substream count is not a process count: at most one process per CPU."""
    from ziplab.codecs import predictive

    seen = []
    real = predictive.run_jobs
    monkeypatch.setattr(predictive, "run_jobs", lambda n, *a: seen.append(n) or real(n, *a))
    data = TEXT * 30
    blob = ziplab.compress(data, "ctx", 2, lanes=64, workers=8)
    assert container.read_header(io.BytesIO(blob)).params["workers"] == 8
    seen.clear()
    assert ziplab.decompress(blob) == data
    assert seen and max(seen) <= (os.cpu_count() or 1)


# ---- the process around the codecs ---------------------------------------------------------
def _interrupt(args: list[str], sig: int, after: float, cwd: Path) -> subprocess.CompletedProcess:
    """Send `sig` `after` seconds once the output's temp file exists (the work has started)."""
    p = subprocess.Popen([sys.executable, "-m", "ziplab", *args], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(cwd.glob(".*.part")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(after)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(args, p.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signals_during_compress_leave_nothing_and_exit_conventionally(tmp_path, sig):
    rng = np.random.default_rng(0)
    words = [bytes(w) for w in rng.integers(97, 123, (3000, 6), dtype=np.uint8)]
    (tmp_path / "big.txt").write_bytes(b" ".join(words[i] for i in rng.integers(0, 3000, 600_000)))
    zl("compress", "-q", "-m", "lzh", "-l", "9", "--block-size", "65536", "-o", str(tmp_path / "warm.zl"),
       str(tmp_path / "big.txt"))  # warm numba's cache, so the signal lands while coding
    r = _interrupt(["compress", "-q", "-m", "lzh", "-l", "9", "big.txt"], sig, 1.0, tmp_path)
    assert r.returncode == 128 + sig, (r.returncode, r.stderr[-500:])
    assert b"interrupted" in r.stderr and b"Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "warm.zl"]


def test_outputs_keep_the_inputs_mode_and_mtime(tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(TEXT)
    os.chmod(src, 0o640)
    os.utime(src, (1_600_000_000, 1_600_000_000))
    assert zl("compress", "-q", str(src)).returncode == 0
    out = Path(str(src) + ".zl")
    assert out.stat().st_mode & 0o777 == 0o640 and int(out.stat().st_mtime) == 1_600_000_000
    os.chmod(out, 0o644)
    assert zl("decompress", "-q", "-f", str(out)).returncode == 0
    assert src.stat().st_mode & 0o777 == 0o644 and src.read_bytes() == TEXT


def test_several_inputs_all_processed_failures_reported_exit_1(tmp_path):
    good1, good2 = tmp_path / "one.txt", tmp_path / "two.txt"
    good1.write_bytes(TEXT)
    good2.write_bytes(TEXT[::-1])
    r = zl("compress", "-q", str(good1), str(tmp_path / "missing.txt"), str(good2))
    assert r.returncode == 1 and b"missing.txt" in r.stderr and b"Traceback" not in r.stderr
    assert Path(str(good1) + ".zl").exists() and Path(str(good2) + ".zl").exists()
    bad = tmp_path / "bad.zl"
    bad.write_bytes(b"garbage")
    good1.unlink()
    r = zl("decompress", "-q", str(bad), str(good1) + ".zl")
    assert r.returncode == 1 and b"bad.zl" in r.stderr and good1.read_bytes() == TEXT


def test_info_escapes_control_characters(tmp_path):
    name = tmp_path / "x\x1b[31m.zl"
    name.write_bytes(ziplab.compress(b"hello", "store"))
    r = zl("info", str(name))
    assert r.returncode == 0 and b"\x1b" not in r.stdout and b"\\x1b" in r.stdout


# ---- bounded mutation fuzz -----------------------------------------------------------------
FUZZ_CASES = [("store", None, {}), ("huffman", None, {}), ("lz77", 6, {}), ("lzss", 6, {}), ("lzh", 9, {}),
              ("ctx", 3, {"lanes": 4}), ("nn", None, {"model": T1, "lanes": 4}), ("mix", 1, {"model": T1, "lanes": 4})]


def mutate(blob: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(blob)
    kind = rng.integers(0, 5)
    if kind == 0:  # bit flips
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(0, len(b))] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # byte overwrites
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(0, len(b))] = int(rng.integers(0, 256))
    elif kind == 2:  # truncation
        del b[rng.integers(0, len(b)):]
    elif kind == 3:  # insertion
        at = int(rng.integers(0, len(b) + 1))
        b[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    else:  # a run of bytes zeroed
        at = int(rng.integers(0, len(b)))
        b[at:at + int(rng.integers(1, 16))] = bytes(min(len(b) - at, 16))[: len(b[at:at + 16])]
    return bytes(b)


def fuzz(codec: str, level, options: dict, cases: int, seed: int = 0) -> dict:
    """Mutated files decode to a ZiplabError or to the exact original, never anything else."""
    rng = np.random.default_rng(seed)
    data = TEXT[:3000] + bytes(range(256)) + TEXT[3000:5000]
    if codec in ("nn", "ctx", "mix"):  # model-driven decoding runs at KB/s: a shorter file, still 3 blocks
        data = data[:700] + bytes(range(256)) + data[700:1000]
    blob = ziplab.compress(data, codec, level, block_size=512 if codec in ("nn", "ctx", "mix") else 2048, **options)
    model = {"model": options["model"]} if "model" in options else {}
    counts = {"cases": 0, "errors": 0, "exact": 0}
    for _ in range(cases):
        bad = mutate(blob, rng)
        try:
            out = ziplab.decompress(bad, **model)
        except ZiplabError:
            counts["errors"] += 1
        else:
            assert out == data, f"{codec}: a mutated file decoded to other bytes ({hashlib.sha256(bad).hexdigest()})"
            counts["exact"] += 1
        counts["cases"] += 1
    return counts


@pytest.mark.parametrize("codec, level, options", FUZZ_CASES, ids=[c[0] for c in FUZZ_CASES])
def test_bounded_fuzz(codec, level, options):
    counts = fuzz(codec, level, options, cases=150 if codec in ("nn", "ctx", "mix") else 400)
    assert counts["errors"] > counts["cases"] // 2


@pytest.mark.fuzz
@pytest.mark.parametrize("codec, level, options", FUZZ_CASES, ids=[c[0] for c in FUZZ_CASES])
def test_long_fuzz(codec, level, options):
    """The nightly-style campaign: ZIPLAB_FUZZ_CASES (default 100000) cases per codec."""
    cases = int(os.environ.get("ZIPLAB_FUZZ_CASES", "100000"))
    counts = fuzz(codec, level, options, cases=cases, seed=int(os.environ.get("ZIPLAB_FUZZ_SEED", "1")))
    print(f"\nfuzz {codec}: {counts}")


def test_hostile_files_through_the_cli_one_line_exit_1_nothing_left(tmp_path):
    blob = _ctx_blob()
    deep = b"{\"x\":" * 3000 + b"1" + b"}" * 3000
    cases = {
        "threads.zl": _with_params(blob, {**_ctx_params(), "threads": 100000}),
        "lanes.zl": _with_params(blob, {**_ctx_params(), "lanes": 2**31}),
        "bomb.zl": _with_params(blob, _ctx_params(), original_size=1 << 40, block_size=256 << 20) + bytes(155_000),
        "junk.zl": container.MAGIC + bytes([1, 0]) + deep,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    t0 = time.perf_counter()
    r = zl("decompress", *(str(tmp_path / n) for n in cases), cwd=tmp_path)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 1 and len(lines) == len(cases), r.stderr
    assert all(line.startswith("ziplab: error:") for line in lines) and b"Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)
    assert time.perf_counter() - t0 < 60


def test_sigint_during_nn_decompress_leaves_nothing(tmp_path):
    data = (TEXT * 120)[:600_000]
    (tmp_path / "t.zl").write_bytes(ziplab.compress(data, "nn", model=T1, lanes=64))
    r = _interrupt(["decompress", "-q", "--workers", "1", "t.zl"], signal.SIGINT, 1.0, tmp_path)
    assert r.returncode == 130 and b"Traceback" not in r.stderr, r.stderr[-500:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.zl"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_worker_pool():
    """A process that used worker processes and then forks (a multiprocessing 'fork' worker, a
    test runner): the child must not talk to its parent's pool, which would wait forever."""
    data = TEXT * 30
    blob = ziplab.compress(data, "ctx", 2, lanes=64, workers=2)
    assert ziplab.decompress(blob, workers=2) == data  # the parent's pool now exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        from ziplab.codecs.workers import shutdown_pools

        ok = ziplab.decompress(blob, workers=2) == data
        shutdown_pools()
        os._exit(0 if ok else 1)
    deadline = time.time() + 120
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on its parent's worker pool")
