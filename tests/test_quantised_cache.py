"""The quantised-model cache and the torch-free start: a checkpoint quantised once is read back
as arrays, with the same digests and probabilities; a damaged entry is rebuilt, never used; a
small file codes without importing torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ziplab.models.portable import engines

ROOT = Path(__file__).resolve().parents[1]
T1 = ROOT / "tests" / "data" / "golden" / "t1-golden.safetensors"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZIPLAB_CACHE_DIR", str(tmp_path))
    return tmp_path / "quantised"


def _probs(pred, lanes: int = 3) -> bytes:
    st = pred.start(lanes)
    prev = np.full(lanes, 256, dtype=np.int64)
    out = []
    for b in b"cache":
        probs, st = pred.step(st, prev)
        out.append(probs.tobytes())
        prev = np.full(lanes, b, dtype=np.int64)
    return b"".join(out)


@pytest.mark.parametrize("spec", [None, str(T1)], ids=["shipped-lstm", "t1"])
def test_a_cached_model_is_the_same_model(cache, spec):
    from ziplab.models import load_model

    fresh = load_model(spec)
    assert fresh._model is not None and len(list(cache.glob("*.npz"))) == 1
    cached = load_model(spec)
    assert cached._model is None  # built from the arrays alone
    assert (cached.quant_sha256, cached.weights_sha256, cached.engine_name, cached.config) == \
        (fresh.quant_sha256, fresh.weights_sha256, fresh.engine_name, fresh.config)
    assert (cached.num_params(), cached.non_embedding_params()) == (fresh.num_params(), fresh.non_embedding_params())
    assert _probs(cached) == _probs(fresh)
    assert cached.model.num_params() == fresh.num_params()  # the float model is still there on demand
    v1 = load_model(spec, engine=re.sub(r"int8x\d-v\d+$", "int8-v1", fresh.engine_name))
    assert len(list(cache.glob("*.npz"))) == 2 and v1.quant_sha256 != fresh.quant_sha256  # keyed by engine too
    assert load_model(spec, engine=v1.engine_name).quant_sha256 == v1.quant_sha256


def test_a_damaged_entry_is_rebuilt_not_used(cache):
    from ziplab.models import load_model

    fresh = load_model(None)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:-100] + bytes(100))
    again = load_model(None)
    assert again._model is not None and again.quant_sha256 == fresh.quant_sha256
    assert load_model(None)._model is None  # rewritten whole


def test_an_unwritable_cache_only_costs_speed(tmp_path, monkeypatch):
    from ziplab.models import load_model

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ZIPLAB_CACHE_DIR", str(blocker))
    assert load_model(None).engine_name == engines("lstm")[1]


def test_a_small_file_codes_without_importing_torch(cache):
    script = ("import sys, ziplab; data = b'portable ' * 200; ziplab.compress(data, 'nn'); "
              "blob = ziplab.compress(data, 'nn'); assert ziplab.decompress(blob) == data; "
              "print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    first = res.stdout.split()[-1]
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0 and first == "True" and res.stdout.split()[-1] == "False"


def test_enough_work_makes_torch_kernels_candidates(monkeypatch):
    from ziplab.models.portable.int8mm import VnniTiles
    from ziplab.models.portable.kernel_choice import TORCH_MIN_MACS, KernelChoice

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(VnniTiles, "available", staticmethod(lambda linears: False))  # a CPU without VNNI
    choice = KernelChoice()
    assert [k.name for k in choice.candidates()[1]] == ["numba"]
    choice.work = TORCH_MIN_MACS
    assert [k.name for k in choice.candidates()[1]] == ["int_mm", "int_mm_t", "qlinear", "fp32"]
    monkeypatch.setattr(VnniTiles, "available", staticmethod(lambda linears: True))  # with VNNI tiles: never
    choice = KernelChoice()
    choice.work = 1 << 60
    assert [k.name for k in choice.candidates()[1]] == ["vnni", "numba"]
    monkeypatch.setitem(sys.modules, "torch", sys)  # torch loaded anyway: its kernels compete with the tiles
    assert [k.name for k in choice.candidates()[1]] == ["int_mm", "int_mm_t", "qlinear", "fp32", "vnni"]