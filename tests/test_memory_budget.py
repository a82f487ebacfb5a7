"""The decoder's memory budget (issue #26): needs stated from headers, refused before allocating,
processes within CPUs and budget, checkpoints validated as input, early failure on payloads
that end before their claims, and the crafted corpus in tests/hostile.py through the CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ziplab
from ziplab import container, limits
from ziplab.codecs.lanes import LaneLayout, decode_lanes, encode_lanes
from ziplab.errors import CorruptDataError, FormatError, ZiplabError
from ziplab.limits import Limits, MemoryLimitError, MemoryNeed, parse_size
from ziplab.models import budget
from ziplab.models.checkpoint import load_model
from ziplab.models.ladder import LADDER, build_model

from . import hostile

ROOT = Path(__file__).resolve().parents[1]
T1 = str(hostile.T1)


def zl(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "ziplab", *args], capture_output=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})


def peak_rss_of(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run the CLI in a fresh wrapper process, so RUSAGE_CHILDREN's peak is this run's alone."""
    code = ("import resource, subprocess, sys, json; "
            f"r = subprocess.run([sys.executable, '-m', 'ziplab', *{args!r}], capture_output=True); "
            "print(json.dumps([r.returncode, r.stderr.decode(errors='replace'), "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=cwd, timeout=600, check=True)
    rc, err, rss_kb = json.loads(out.stdout)
    return subprocess.CompletedProcess(args, rc, b"", err.encode()), rss_kb * 1024


# ---- the policy ----------------------------------------------------------------------------------
def test_sizes_read_like_xz_memlimits():
    assert parse_size("512M") == 512 << 20 and parse_size("2G") == 2 << 30 and parse_size("1.5GiB") == 3 << 29
    assert parse_size("4000000") == 4_000_000 and parse_size("3 MB") == 3_000_000
    for bad in ("", "lots", "-1G", "0", "1Q", "1e9"):
        with pytest.raises(ziplab.ParameterError):
            parse_size(bad)


def test_the_default_limit_comes_from_the_environment_else_available_memory(monkeypatch):
    monkeypatch.setenv(limits.ENV, "300M")
    assert limits.default_limits().memory == 300 << 20
    monkeypatch.delenv(limits.ENV)
    monkeypatch.setattr(limits, "available_memory", lambda: 8 << 30)
    assert limits.default_limits().memory == 6 << 30
    monkeypatch.setattr(limits, "available_memory", lambda: 100 << 20)
    assert limits.default_limits().memory == limits.MIN_DEFAULT  # never below what default files need
    assert limits.default_limits("2G").memory == 2 << 30


def test_processes_fit_cpus_and_budget():
    need = MemoryNeed(shared=100 << 20, predictor=235 << 20, streams=64)
    many = Limits(memory=64 << 30, cpus=64)
    assert need.processes(many, 64) == 64
    tight = Limits(memory=2 << 30, cpus=64)  # a 64-core machine, a 2 GiB budget: ctx o6's 64 substreams
    procs = need.processes(tight, 64)
    assert 1 <= procs < 64 and need.total(procs) <= tight.memory + need.predictor + limits.WORKER_RUNTIME
    assert need.processes(Limits(memory=1, cpus=64), 64) == 1  # never zero: refusing is check()'s job
    with pytest.raises(MemoryLimitError, match=r"needs 1.0 GiB .* over the limit of 512.0 MiB"):
        Limits(memory=512 << 20, cpus=1).check(1 << 30, "this member")


# ---- what codecs say they need --------------------------------------------------------------------
@pytest.mark.parametrize("size", sorted(LADDER))
def test_parameter_counts_from_configs_alone_are_exact(size):
    rung = LADDER[size]
    model = build_model(rung.family, rung.config)
    config = model.cfg.to_dict()
    budget.check_config(rung.family, config)
    assert budget.param_count(rung.family, config) == model.num_params()


def _nbytes(obj, seen=None) -> int:
    """Bytes of every numpy array reachable from a predictor's state."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_nbytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj):
        return sum(_nbytes(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    return 0


@pytest.mark.parametrize("spec", [T1, "shipped"])
def test_lane_state_estimates_bound_the_engines_arrays(spec):
    pred = load_model(None if spec == "shipped" else spec)
    family, config = pred.meta["family"], pred.config
    for lanes in (1, 64, 512):
        state = pred.start(lanes)
        assert _nbytes(state) <= lanes * budget.lane_state_bytes(family, config)
    engine_bytes = sum(a.nbytes for a in pred.engine.arrays().values())
    assert engine_bytes <= budget.model_bytes(family, config)


def test_a_header_states_its_decoding_memory_and_info_prints_it(tmp_path):
    blob = ziplab.compress(hostile.TEXT, "mix", 2, model="none")
    need = container.decoding_need(container.read_header(io.BytesIO(blob)))
    assert 30 << 20 < need.total(1) < 200 << 20  # fixed SSE/match tables plus block-sized ones
    (tmp_path / "a.zl").write_bytes(blob)
    r = zl("info", "--json", str(tmp_path / "a.zl"))
    assert json.loads(r.stdout)[0]["decoding_memory_bytes"] == need.total(1)
    assert b"to decode" in zl("info", str(tmp_path / "a.zl")).stdout


def test_over_the_limit_is_refused_with_its_need_and_decodes_when_raised(tmp_path):
    blob = ziplab.compress(hostile.TEXT, "ctx", 6, lanes=8)
    need = container.decoding_need(container.read_header(io.BytesIO(blob))).total(1)
    with pytest.raises(MemoryLimitError, match="needs"):
        ziplab.decompress(blob, memory_limit=need - 1)
    assert ziplab.decompress(blob, memory_limit=need) == hostile.TEXT
    (tmp_path / "a.zl").write_bytes(blob)
    r = zl("-t", "--memory-limit", "64M", "a.zl", cwd=tmp_path)
    assert r.returncode == 1 and b"needs" in r.stderr and b"over the limit of 64.0 MiB" in r.stderr
    assert zl("-t", "a.zl", cwd=tmp_path, env={limits.ENV: "64M"}).returncode == 1
    assert zl("-t", "--memory-limit", "2G", "a.zl", cwd=tmp_path).returncode == 0


def test_a_large_honest_mix_block_fits_the_default_limit_of_a_4_gb_machine(monkeypatch):
    """256 MiB at the strongest level, one lane, with the shipped model: under 3/4 of 3.2 GB."""
    monkeypatch.setattr(limits, "available_memory", lambda: 3_200_000_000)
    monkeypatch.delenv(limits.ENV, raising=False)
    header = container.read_header(io.BytesIO(hostile.claims()["mix-t1-lanes1"]()))
    shipped = container.read_header(io.BytesIO(ziplab.compress(b"x" * 600, "mix", 3))).params
    big = dataclasses.replace(header, params={**shipped, "lanes": 1})
    assert container.decoding_need(big).total(1) <= limits.default_limits().memory


# ---- layouts and early failure ----------------------------------------------------------------------
@given(st.integers(1, 200_000), st.integers(1, 4096))
@settings(max_examples=300, deadline=None)
def test_closed_form_lane_layout_matches_the_arrays_it_replaced(n, lanes):
    lay = LaneLayout.of(n, lanes)
    active = np.minimum(lay.L, -(-(n - np.arange(lay.T)) // lay.T))  # the old per-step array
    ts = np.unique(np.r_[0, lay.T - 1, lay.rem - 1, lay.rem, np.linspace(0, lay.T - 1, 7).astype(int)])
    ts = ts[(ts >= 0) & (ts < lay.T)]
    assert all(lay.active(int(t)) == active[t] for t in ts)
    assert lay.done(lay.T) == n and all(lay.done(int(t) + 1) == int(active[:t + 1].sum()) for t in ts)


def test_a_payload_that_ends_early_fails_at_its_end_not_at_the_claim():
    from ziplab.models.context import ContextPredictor

    data = np.frombuffer(hostile.TEXT, dtype=np.uint8)
    payload = encode_lanes(ContextPredictor(order=2), data, 1)
    t0 = time.perf_counter()
    with pytest.raises(CorruptDataError):
        decode_lanes(ContextPredictor(order=2), payload, 50 * len(data), 1)
    assert time.perf_counter() - t0 < 30


def test_mix_tables_refilled_between_blocks_code_like_fresh_ones():
    from ziplab.codecs.mix import Tables, decode_block, encode_block

    params = container.read_header(io.BytesIO(ziplab.compress(b"x" * 600, "mix", 1, model="none"))).params
    a, b = (np.frombuffer(t, dtype=np.uint8) for t in (hostile.TEXT[:3000], hostile.TEXT[1000:5000]))
    tables = Tables()
    reused = [encode_block(x, params, [], tables=tables) for x in (a, b, a)]
    fresh = [encode_block(x, params, []) for x in (a, b, a)]
    assert reused == fresh
    assert [bytes(decode_block(p, len(x), params, [], tables=tables)) for p, x in zip(fresh, (a, b, a))] == \
        [x.tobytes() for x in (a, b, a)]


# ---- the crafted corpus: claims ---------------------------------------------------------------------
def test_crafted_claims_fail_in_seconds_in_one_line_under_1_gib(tmp_path):
    names = []
    for name, build in hostile.claims().items():
        (tmp_path / f"{name}.zl").write_bytes(build())
        names.append(f"{name}.zl")
    t0 = time.perf_counter()
    r, rss = peak_rss_of(["-t", "-q", "--model", T1, *names], tmp_path)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 1 and len(lines) == len(names), r.stderr
    assert all(line.startswith("ziplab: error:") for line in lines) and b"Traceback" not in r.stderr
    assert time.perf_counter() - t0 < 120  # four files, on two shared cores
    assert rss <= 1 << 30, f"peak RSS {rss / 2**20:.0f} MiB"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


@pytest.mark.parametrize("name", list(hostile.hostile_configs()))
def test_impossible_model_configs_in_a_header_are_format_errors(name):
    config = hostile.hostile_configs()[name]
    blob = ziplab.compress(hostile.TEXT[:2000], "nn", model=T1, lanes=4)
    with pytest.raises(FormatError, match="impossible model|config|unreadable"):  # NaN: not JSON a header holds
        container.read_header(io.BytesIO(hostile.header_with(blob, config=config)))
    mix = ziplab.compress(hostile.TEXT[:2000], "mix", 1, model=T1, lanes=4)
    with pytest.raises(FormatError):
        container.read_header(io.BytesIO(hostile.header_with(mix, config=config)))


# ---- the crafted corpus: checkpoints ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(hostile.hostile_checkpoints()))
def test_hostile_checkpoints_are_one_line_errors_before_any_work(name, tmp_path):
    path = hostile.hostile_checkpoints()[name](tmp_path / "evil.safetensors")
    with pytest.raises(ZiplabError):
        load_model(str(path))


def test_hostile_checkpoints_through_the_cli(tmp_path):
    (tmp_path / "in.txt").write_bytes(hostile.TEXT)
    builders = hostile.hostile_checkpoints()
    for i, name in enumerate(["NaN weight", "config: context 2^30", "shape differs from config",
                              "an extra megabyte tensor"]):
        path = builders[name](tmp_path / f"evil{i}.safetensors")
        t0 = time.perf_counter()
        r = zl("compress", "-q", "-m", "nn", "--model", str(path), "-o", "out.zl", "in.txt", cwd=tmp_path)
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("ziplab: error:"), (name, r.stderr)
        assert b"Traceback" not in r.stderr and b"Warning" not in r.stderr and not (tmp_path / "out.zl").exists()
        assert time.perf_counter() - t0 < 60, name


def test_a_checkpoint_is_refused_when_its_model_exceeds_the_limit(tmp_path):
    with pytest.raises(MemoryLimitError, match="the model in"):
        load_model(T1, limits=Limits(memory=1 << 10, cpus=1))


# ---- the process ----------------------------------------------------------------------------------
def test_ctrl_c_stops_a_multi_worker_decode_at_once(tmp_path):
    data = (hostile.TEXT * 200)[:3_000_000]  # long enough to still be decoding on a quiet machine
    (tmp_path / "a.zl").write_bytes(ziplab.compress(data, "ctx", 6, lanes=8, workers=2))
    p = subprocess.Popen([sys.executable, "-m", "ziplab", "-d", "-q", "--workers", "2", "a.zl"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".*.part")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.7)  # the workers are decoding
    t0 = time.perf_counter()
    os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the parent and its workers alike
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and b"Traceback" not in err, err[-800:]
    assert time.perf_counter() - t0 < 10
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.zl"]


def test_verify_stops_at_the_first_failing_block(tmp_path):
    data = (hostile.TEXT * 40)[:200_000]
    blob = bytearray(ziplab.compress(data, "ctx", 2, lanes=4, block_size=4096))
    header = container.read_header(io.BytesIO(bytes(blob)))
    blob[header.header_size + hostile.BLOCK.size + 40] ^= 0x55  # inside block 0's payload
    (tmp_path / "a.zl").write_bytes(bytes(blob))
    progress = []
    with pytest.raises(CorruptDataError, match="block 0|cannot be decoded|payload"):
        container.decompress_file(io.BytesIO(bytes(blob)), io.BytesIO(), progress=progress.append)
    assert sum(progress) <= 4096  # nothing past block 0 was decoded
    r = zl("-t", "a.zl", cwd=tmp_path)
    assert r.returncode == 1 and len(r.stderr.decode().strip().splitlines()) == 1


def test_streamed_members_are_budgeted_for_a_full_block():
    """A streamed member's header holds no length: its need is that of a full block."""
    from ziplab.stream import Decompressor

    piped = io.BytesIO()
    container.compress_file(_Pipe(hostile.TEXT), piped, "ctx", 6, block_size=1 << 20)
    header = container.read_header(io.BytesIO(piped.getvalue()))
    assert header.streamed and container.decoding_need(header).total(1) > 3 << 20
    with pytest.raises(MemoryLimitError):
        Decompressor(memory_limit=64 << 20).decompress(piped.getvalue())
    assert Decompressor(memory_limit="1G").decompress(piped.getvalue()) == hostile.TEXT


class _Pipe(io.RawIOBase):
    """A non-seekable source, as standard input is."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        return self._src.readinto(b)


@pytest.mark.parametrize("text", [b'{"level":2,"level":3}', b'{"level": 2}', b'{"lanes":4,"level":NaN}',
                                  b'{"level":2.0}'.replace(b"2.0", b"2e0")])
def test_header_params_must_be_canonical_json(text):
    """Duplicate keys, spaces, NaN or another spelling of a number would let two headers mean
    one member (or mean different things to different JSON readers)."""
    blob = ziplab.compress(b"abc" * 100, "lzh", 6)
    header = container.read_header(io.BytesIO(blob))
    name = header.codec.encode()
    head = container.MAGIC + bytes([header.version, 0, len(name)]) + name + len(text).to_bytes(2, "little") + text
    head += hostile.BLOCK.__class__("<IQI").pack(header.block_size, header.original_size, header.crc32)
    head += (__import__("zlib").crc32(head)).to_bytes(4, "little")
    with pytest.raises(FormatError, match="canonical|unreadable"):
        container.read_header(io.BytesIO(head + blob[header.header_size:]))


def test_a_model_config_naming_another_family_is_a_format_error():
    blob = ziplab.compress(hostile.TEXT[:2000], "nn", model=T1, lanes=4)
    config = container.read_header(io.BytesIO(blob)).params["config"]
    with pytest.raises(FormatError, match="config says"):
        container.read_header(io.BytesIO(hostile.header_with(blob, config={**config, "family": "lstm"})))
