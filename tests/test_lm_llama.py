"""The portable Llama engine (`models.portable.llama`, `llama-int8x8-v1`): Llama-architecture
Hugging Face directories code on integer products and f64 basic operations, the same bytes on
every CPU.

- round trips on Llama (tied and untied heads; linear and llama3 rope scaling), Qwen2 (q/k/v
  biases) and Qwen3 (per-head q/k norms), and past the attention window (the ring wraps, the
  sink is re-rotated);
- the header names the portable engine, with no float environment;
- the probabilities track float inference of the same model with the same cache policy
  (transformers' own forward, its cache trimmed and the sink key re-rotated as the engine does);
- cross-kernel: encoded under torch's scalar kernels (ATEN_CPU_CAPABILITY=default, SSE4
  oneDNN/MKL, generic numba) and under AVX2, decoded natively, and the reverse: identical files;
- golden: v2-text-lm-tiny-llama.zl (lm-hf-golden.json) is decoded by test_lm_codec; here its
  header is checked too;
- refusals in one line: rope scaling other than linear and llama3 (the float engine codes it
  instead), sizes past the exactness bounds, values that are not finite or past ±65,536.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import ziplab
from ziplab.errors import ZiplabError

from .conftest import SAMPLES

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
TINY = f"hf:{GOLDEN / 'lm-tiny'}"


@pytest.fixture(scope="module")
def tok():
    from .hf_models import train_tokenizer

    return train_tokenizer()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tok):
    from .hf_models import llama_dir

    root = tmp_path_factory.mktemp("llamas")
    specs = {
        "untied": f"hf:{llama_dir(root / 'untied', hidden=24, heads=4, kv=2, tie=False, seed=1, tok=tok)}",
        "qwen2": f"hf:{llama_dir(root / 'qwen2', hidden=16, heads=2, kv=1, kind='qwen2', seed=2, tok=tok)}",
        "qwen3": "hf:" + str(llama_dir(root / "qwen3", hidden=16, heads=4, kv=2, kind="qwen3", seed=3, tok=tok,
                                       tie=False, head_dim=8)),
        "short": f"hf:{llama_dir(root / 'short', hidden=16, context=12, seed=4, tok=tok)}",
        "linear": "hf:" + str(llama_dir(root / "linear", hidden=16, seed=5, tok=tok, rope_parameters={
            "rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0})),
        "llama3": "hf:" + str(llama_dir(root / "llama3", hidden=16, seed=6, tok=tok, rope_parameters={
            "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    }
    for spec in specs.values():
        _sharpen(Path(spec[3:]), 3.0)
    return specs


def _sharpen(d: Path, factor: float) -> None:
    """Every matrix times `factor` (norm gains kept): a random model's distributions are then far
    from uniform, so comparing them with float inference means something."""
    from safetensors.numpy import load_file, save_file

    path = d / "model.safetensors"
    tensors = load_file(str(path))
    tensors = {k: (v * factor if "norm" not in k else v).astype(v.dtype) for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def _engine(blob: bytes) -> dict:
    return ziplab.read_header(io.BytesIO(blob)).params


@pytest.mark.parametrize("name", ["empty", "one", "all256", "text", "random"])
def test_llama_codes_on_the_portable_engine_and_round_trips(name):
    from ziplab.models.portable import llama

    data = SAMPLES[name][:2500]
    blob = ziplab.compress(data, "lm", model=TINY, lanes=4)
    params = _engine(blob)
    assert params["engine"] == llama.ENGINE and "quant_sha256" in params and "environment" not in params
    assert ziplab.decompress(blob) == data


@pytest.mark.parametrize("kind", ["untied", "qwen2", "qwen3", "short", "linear", "llama3"])
def test_each_llama_shape_round_trips(dirs, kind):
    """Untied head; Qwen2's biases; Qwen3's q/k norms and explicit head size; a 12-position
    window that wraps many times (the sink's key re-rotated every step); linear and llama3
    rope scaling."""
    data = SAMPLES["text"][:1200] + bytes(range(200, 256))
    blob = ziplab.compress(data, "lm", model=dirs[kind], lanes=2)
    assert _engine(blob)["engine"] == "llama-int8x8-v1"
    assert ziplab.decompress(blob) == data


def sink_reference(module, fed: list[int], T: int) -> np.ndarray:
    """Float inference of `module` (transformers' own code, float32) with the engine's cache
    policy: position 0 kept, then the newest T - 1 positions; once those have wrapped, the first
    key rotated to sit just before the oldest. Per id fed, the float64 softmax of the logits."""
    import inspect

    import torch
    from transformers import DynamicCache

    W = T - 1
    cache = DynamicCache()
    key = "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"
    inv = module.model.rotary_emb.inv_freq.double()
    raw, out = [], []
    with torch.inference_mode():
        for pos, tok in enumerate(fed):
            if pos > W:
                ang = (pos - W) * inv
                cos, sin = torch.cat([ang.cos(), ang.cos()]), torch.cat([ang.sin(), ang.sin()])
                for layer, k0 in zip(cache.layers, raw):
                    layer.keys = torch.cat([layer.keys[:, :, :1], layer.keys[:, :, 2:]], dim=2)
                    layer.values = torch.cat([layer.values[:, :, :1], layer.values[:, :, 2:]], dim=2)
                    h = k0.shape[-1] // 2
                    turned = torch.cat([-k0[..., h:], k0[..., :h]], dim=-1)
                    layer.keys[:, :, 0] = (k0 * cos + turned * sin).float()
            logits = module(input_ids=torch.tensor([[tok]]), position_ids=torch.tensor([[pos]]),
                            use_cache=True, **{key: cache}).logits
            if pos == 0:  # position 0's keys are rotated by angle 0: they are the raw keys
                raw = [layer.keys[:, :, 0].double().clone() for layer in cache.layers]
            out.append(torch.softmax(logits[0, -1].double(), -1).numpy())
    return np.array(out)


@pytest.mark.parametrize("kind", ["tiny", "untied", "qwen2", "qwen3", "short", "linear", "llama3"])
def test_portable_probabilities_track_the_float_model(dirs, kind):
    """The same model, the same context: at every position (for `short`, 12 positions, mostly
    past the window, where the ring has wrapped and the sink key is re-rotated), the engine's
    distribution is within a small total-variation distance of float inference with the same
    cache policy (`sink_reference`), and the text's cross-entropy differs by well under 1%."""
    from ziplab.lm.coding import coding_model
    from ziplab.lm.hf import load_hf

    spec = TINY if kind == "tiny" else dirs[kind]
    m, hf = coding_model(spec), load_hf(spec)
    ids = list(m.tokens.encode(SAMPLES["text"][:400]))[:80]
    seq = [m.tokens.start] + ids
    want = sink_reference(hf.module, seq[:-1], m.predictor.engine.T)
    state = m.predictor.start(1)
    got = []
    for t in range(len(ids)):
        probs, state = m.predictor.step(state, np.array([seq[t]]))
        got.append(probs[0].astype(np.float64))
    got = np.array(got)
    tv = 0.5 * np.abs(want - got).sum(axis=1)
    assert tv.max() < 0.005, tv.max()
    at = np.arange(len(ids))
    ce_float, ce_port = -np.log2(want[at, ids]).sum(), -np.log2(got[at, ids]).sum()
    assert abs(ce_port / ce_float - 1) < 0.003, (ce_port, ce_float)


@pytest.mark.parametrize("params", [
    {"rope_type": "default", "rope_theta": 500000.0},
    {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 8192},  # Llama 3.2's
], ids=lambda p: p["rope_type"])
def test_rope_frequencies_are_transformers_own_to_float32_precision(params):
    """The engine's decimal frequencies equal transformers' (computed in float32) to 3e-7, and
    a scaling really moves them (llama3 here has frequencies in all three bands)."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from ziplab.models.portable.llama_spec import rope_inv_freq

    config = LlamaConfig(hidden_size=2048, num_attention_heads=32, head_dim=64, max_position_embeddings=131072,
                         rope_parameters=params)
    kind = params["rope_type"]
    theirs = (ROPE_INIT_FUNCTIONS[kind](config, "cpu")[0] if kind != "default" else
              1.0 / (params["rope_theta"] ** (np.arange(0, 64, 2) / 64)))
    theirs = np.asarray(theirs, dtype=np.float64)
    extra = tuple(params[k] for k in ("factor", "low_freq_factor", "high_freq_factor",
                                      "original_max_position_embeddings") if k in params)
    ours = rope_inv_freq(64, kind, params["rope_theta"], extra)
    assert np.abs(ours / theirs - 1).max() < 3e-7
    plain = rope_inv_freq(64, "default", params["rope_theta"], ())
    assert (kind == "default") == bool((ours == plain).all())


def test_the_start_of_a_lane_does_not_depend_on_the_lane_count():
    """Lane 0 of 1 lane and of 3 lanes (fed the same ids) get the same bits."""
    from ziplab.lm.coding import coding_model

    m = coding_model(TINY)
    ids = np.array(m.tokens.encode(SAMPLES["text"][:300])[:40])
    rows = {}
    for lanes in (1, 3):
        st = m.predictor.start(lanes)
        prev = np.full(lanes, m.tokens.start)
        out = []
        for t in range(len(ids)):
            p, st = m.predictor.step(st, prev)
            out.append(p[0].copy())
            prev = np.resize(ids[t:t + 1], lanes)
        rows[lanes] = np.array(out)
    assert rows[1].tobytes() == rows[3].tobytes()


# ---- the same bytes under every CPU kernel level ------------------------------------------------
SCRIPT = r"""
import sys, ziplab
from pathlib import Path
out, other, data, specs = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]).read_bytes(), sys.argv[4:]
for i, spec in enumerate(specs):
    for lanes in (1, 4):
        (out / f"m{i}-l{lanes}.zl").write_bytes(ziplab.compress(data, "lm", model=spec, lanes=lanes))
if other != "-":
    for i, spec in enumerate(specs):
        for lanes in (1, 4):
            assert ziplab.decompress((Path(other) / f"m{i}-l{lanes}.zl").read_bytes()) == data, (spec, lanes)
from ziplab.lm.coding import coding_model
m = coding_model(specs[0])
m.predictor.start(4)
print("kernel", m.predictor.kernel)
print("ok")
"""


def _run(env_extra: dict, out: Path, other: Path | None, data: Path, specs: list[str]) -> str:
    """Encode (and decode `other`'s files) under env_extra; returns the int8 kernel chosen there."""
    from .test_portable import KERNEL_VARS

    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out.mkdir()
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(other or "-"), str(data), *specs],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
    return r.stdout.split("kernel ")[1].split()[0]


def test_llama_gives_the_same_bytes_under_every_kernel_level(tmp_path, dirs):
    """Native encodes; ATEN_CPU_CAPABILITY=default (SSE4 oneDNN/MKL, generic numba) encodes and
    decodes the native files; AVX2 encodes and decodes the default ones; native decodes AVX2's.
    Every level writes the same files: an untied Llama, Qwen2 (biases), Qwen3 (q/k norms) and a
    12-position window that wraps, llama3 rope scaling (tied; the golden file is tied too)."""
    from .test_portable import AVX2, MINIMAL

    data = tmp_path / "in"
    data.write_bytes(SAMPLES["text"][:2000] + bytes(range(256)))
    specs = [dirs[k] for k in ("untied", "qwen2", "qwen3", "short", "llama3")]
    native, minimal, avx2, back = (tmp_path / n for n in ("native", "minimal", "avx2", "back"))
    from .test_portable import has_int8_dot_products

    kernel = _run({}, native, None, data, specs)
    assert ("int_mm" in kernel or "qlinear" in kernel or "vnni" in kernel) == has_int8_dot_products()  # int8 dot products
    assert _run(MINIMAL, minimal, native, data, specs) == "fp32"  # oneDNN's int8 GEMM saturates there
    assert _run(AVX2, avx2, minimal, data, specs) == "fp32"
    _run({}, back, avx2, data, specs)
    for name in sorted(p.name for p in native.iterdir()):
        files = {(d / name).read_bytes() for d in (native, minimal, avx2, back)}
        assert len(files) == 1, name


# ---- golden --------------------------------------------------------------------------------------
def test_llama_golden_file_is_on_the_portable_engine():
    entry = next(e for e in json.loads((GOLDEN / "lm-hf-golden.json").read_text())
                 if e["file"] == "v2-text-lm-tiny-llama.zl")
    params = _engine((GOLDEN / entry["file"]).read_bytes())
    assert entry["engine"] == params["engine"] == "llama-int8x8-v1" and "environment" not in params


def test_float_engine_files_of_a_llama_keep_their_engine():
    """A file a float engine wrote for a Llama (before the portable engine existed) names
    torch-float32-v1: decoding rebuilds the float predictor, not the portable one."""
    from ziplab.lm.coding import FLOAT_ENGINE, coding_model

    m = coding_model(TINY, FLOAT_ENGINE)
    assert m.engine == FLOAT_ENGINE and not m.portable
    assert coding_model(TINY).engine == "llama-int8x8-v1"


# ---- refusals ------------------------------------------------------------------------------------
def _config_copy(tmp_path: Path, **changes) -> str:
    d = tmp_path / "m"
    shutil.copytree(GOLDEN / "lm-tiny", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))
    return f"hf:{d}"


def test_dynamic_rope_scaling_is_refused_by_the_engine_and_coded_on_the_float_engine(tmp_path):
    from ziplab.lm.hf import load_hf
    from ziplab.models.portable.llama import PortableLlama
    from ziplab.models.portable.llama_spec import LlamaUnsupported

    spec = _config_copy(tmp_path, rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})
    with pytest.raises(LlamaUnsupported, match="rope scaling 'dynamic'") as info:
        PortableLlama(load_hf(spec).module)
    assert "\n" not in str(info.value)
    blob = ziplab.compress(b"some text, some text", "lm", model=spec, lanes=1)
    assert _engine(blob)["engine"] == "torch-float32-v1"


def _spec_of(**config):
    """llama_spec over a config alone (checks come before the module is touched)."""
    from ziplab.models.portable.llama_spec import llama_spec

    base = dict(model_type="llama", hidden_act="silu", hidden_size=16, num_attention_heads=2, num_hidden_layers=2,
                num_key_value_heads=1, head_dim=8, intermediate_size=32, vocab_size=300, rms_norm_eps=1e-6,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, max_position_embeddings=128)
    base.update(config)
    return llama_spec(SimpleNamespace(config=SimpleNamespace(**base)))


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 200_000}, "past the int32-exact bound"),
    ({"intermediate_size": 10**9}, "past the int32-exact bound"),
    ({"head_dim": 4096}, "head size"),
    ({"head_dim": 7}, "head size"),
    ({"num_key_value_heads": 3}, "do not split"),
    ({"vocab_size": 1 << 30}, "vocabulary"),
    ({"rms_norm_eps": float("nan")}, "rms_norm_eps"),
    ({"rms_norm_eps": -1.0}, "rms_norm_eps"),
    ({"hidden_size": -5}, "not a positive integer"),
    ({"num_hidden_layers": True}, "not a positive integer"),
    ({"rope_parameters": {"rope_type": "default", "rope_theta": float("inf")}}, "rope_theta"),
    ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "rope scaling 'yarn'"),
    ({"rope_parameters": {"rope_type": "longrope", "factor": 8.0}}, "rope scaling 'longrope'"),
    ({"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": float("nan")}}, "factor"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 1e4, "factor": 8.0, "low_freq_factor": 4.0,
                          "high_freq_factor": 1.0, "original_max_position_embeddings": 64}}, "must exceed"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 1e4, "factor": 8.0}}, "low_freq_factor"),
    ({"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}}, "partial"),
    ({"rope_parameters": "nope"}, "not a mapping"),
    ({"hidden_act": "gelu"}, "not SiLU"),
    ({"use_sliding_window": True}, "sliding-window"),
    ({"layer_types": ["full_attention", "sliding_attention"]}, "full attention"),
    ({"model_type": "gpt2"}, "not a Llama-architecture type"),
])
def test_configs_the_engine_cannot_compute_exactly_are_refused_in_one_line(change, message):
    with pytest.raises(ZiplabError, match=message) as info:
        _spec_of(**change)
    assert "\n" not in str(info.value)


def test_a_non_finite_weight_is_refused_before_coding(tmp_path):
    from safetensors.numpy import load_file, save_file

    spec = _config_copy(tmp_path)
    path = Path(spec[3:]) / "model.safetensors"
    tensors = load_file(str(path))
    tensors["model.layers.0.mlp.up_proj.weight"][0, 0] = np.nan
    save_file(tensors, str(path))
    with pytest.raises(ZiplabError, match="NaN or infinite") as info:
        ziplab.compress(b"text", "lm", model=spec)
    assert "\n" not in str(info.value)


def test_a_weight_past_the_bound_is_refused_in_one_line(tmp_path):
    from safetensors.numpy import load_file, save_file

    spec = _config_copy(tmp_path)
    path = Path(spec[3:]) / "model.safetensors"
    tensors = load_file(str(path))
    tensors["model.layers.1.post_attention_layernorm.weight"][3] = np.float32(1e6)
    save_file(tensors, str(path))
    with pytest.raises(ZiplabError, match=r"post_attention_layernorm.weight holds a value .* past") as info:
        ziplab.compress(b"text", "lm", model=spec)
    assert "\n" not in str(info.value)


def test_the_state_is_checked_against_the_memory_limit_before_it_is_allocated(monkeypatch):
    from ziplab.limits import MemoryLimitError
    from ziplab.lm.coding import coding_model

    m = coding_model(TINY)
    need = m.predictor.engine.state_bytes(1024)
    assert need > m.predictor.engine.state_bytes(1) > 0
    monkeypatch.setenv("ZIPLAB_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryLimitError, match="Llama engine's state for 1024 lanes"):
        m.predictor.start(1024)


def test_nn_does_not_take_a_token_model():
    with pytest.raises(ZiplabError, match="not a byte-level lab model"):
        ziplab.compress(b"bytes", "nn", model=TINY)


def test_the_header_states_each_lanes_engine_memory(monkeypatch):
    """`lane_state` (the Llama engine's per-lane state) goes into decode_memory before anything
    is loaded; a header that understates it still meets the engine's own check before the state
    is allocated; a float header may not carry it."""
    from ziplab.codecs import get
    from ziplab.errors import FormatError
    from ziplab.limits import MemoryLimitError
    from ziplab.lm.coding import coding_model

    codec = get("lm")
    data = SAMPLES["text"][:1500]
    blob = ziplab.compress(data, "lm", model=TINY, lanes=4)
    params = _engine(blob)
    m = coding_model(TINY)
    assert params["lane_state"] == m.predictor.engine.state_bytes(1)
    need = codec.decode_memory(params, 1 << 20, len(data))
    assert need.predictor == 4 * params["vocab"] * 16 + 4 * params["lane_state"]
    from ziplab.codecs.base import CodingOptions

    lying = codec._checked_model({**params, "lane_state": 1}, CodingOptions())
    monkeypatch.setenv("ZIPLAB_MEMORY_LIMIT", str(m.predictor.engine.state_bytes(4) - 1))
    with pytest.raises(MemoryLimitError, match="Llama engine's state"):
        lying.predictor.start(4)
    float_params = {k: v for k, v in params.items() if k not in ("quant_sha256", "lane_state")}
    float_params.update(environment="x", fingerprint="0" * 32, context=64, keep=32, engine="torch-float32-v1")
    codec.check_params(float_params)
    with pytest.raises(FormatError, match="mixes"):
        codec.check_params({**float_params, "lane_state": 5})


def test_mutated_llama_files_never_decode_to_other_bytes():
    from .test_hardening import fuzz

    counts = fuzz("lm", None, {"model": TINY, "lanes": 4}, cases=40)
    assert counts["errors"] > counts["cases"] // 2


def test_quantising_is_checked_against_the_memory_limit_first(monkeypatch):
    from ziplab.limits import MemoryLimitError
    from ziplab.lm.hf import load_hf
    from ziplab.models.portable.llama import PortableLlama
    from ziplab.models.portable.llama_spec import build_bytes, llama_spec

    module = load_hf(TINY).module
    need = build_bytes(llama_spec(module))
    monkeypatch.setenv("ZIPLAB_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(MemoryLimitError, match="quantising this Llama-architecture model") as info:
        PortableLlama(module)
    assert "\n" not in str(info.value)
