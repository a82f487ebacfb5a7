"""Scale-out on CPU, CI-sized: torchrun + DDP (gloo) against a single process, rank-0-only
writing, resuming (in one process and under torchrun), `sweep --jobs`, and concurrent writers
of one results.json."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.numpy import load_file  # noqa: E402

from ziplab.models.train import TrainConfig, TrainingStopped, state_path, train_model  # noqa: E402
from ziplab.sweep.run import SweepSettings, add_record, run_sweep  # noqa: E402
from ziplab.sweep.store import update  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog.\n" % i for i in range(4000))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "train.txt").write_bytes(TEXT[:150_000])
    (folder / "dev.txt").write_bytes(TEXT[150_000:])
    return str(folder)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _train_cmd(corpus: str, out: Path, nproc: int, *extra: str) -> list[str]:
    args = ["-m", "ziplab", "train", "--size", "l1", "--corpus", corpus, "--seed", "3", "--threads", "1",
            "--quiet", "--no-autocast", "--out", str(out), *extra]
    if nproc == 1:
        return [sys.executable, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone", *args]


def _weights(path: Path) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}


def _close(a: dict, b: dict) -> None:
    """fp32 runs that differ only in summation order, stored as fp16: within one fp16 step."""
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k], b[k], rtol=2e-3, atol=1e-4), (k, np.abs(a[k] - b[k]).max())


def test_ddp_two_processes_match_one_process_with_the_same_global_batch(corpus, tmp_path):
    one, two = tmp_path / "one" / "l1.safetensors", tmp_path / "two" / "l1.safetensors"
    budget = ["--train-bytes", str(32 * 128 * 30)]  # 30 optimiser steps of the global batch
    r1 = subprocess.run(_train_cmd(corpus, one, 1, *budget), capture_output=True, env=_env(), timeout=300)
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = subprocess.run(_train_cmd(corpus, two, 2, *budget), capture_output=True, env=_env(), timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    _close(_weights(one), _weights(two))
    meta1 = json.loads(one.with_suffix(".json").read_text())
    meta2 = json.loads(two.with_suffix(".json").read_text())
    assert meta2["processes"] == 2 and meta2["bytes_seen"] == meta1["bytes_seen"] and meta2["steps"] == 30
    # rank 0 alone wrote: one checkpoint, one metadata file, no leftovers
    assert sorted(p.name for p in two.parent.iterdir()) == ["l1.json", "l1.safetensors"]
    assert r2.stdout.count(b"held-out bpb") == 1


def test_resume_continues_exactly_where_training_stopped(corpus, tmp_path):
    cfg = TrainConfig("l1", corpus, train_bytes=32 * 128 * 24, seed=4, threads=1, out=str(tmp_path / "a.safetensors"),
                      final_eval_bytes=2048)
    whole = train_model(cfg)
    steps = []

    def stop_at_second_check() -> bool:  # checks come every STOP_EVERY steps: this stops at step 16
        steps.append(1)
        return len(steps) == 2

    part = TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "b.safetensors")})
    with pytest.raises(TrainingStopped) as stopped:
        train_model(part, should_stop=stop_at_second_check)
    assert stopped.value.step == 16
    assert state_path(Path(part.out)).is_file()
    resumed = train_model(TrainConfig(**{**part.__dict__, "resume": True}))
    assert not state_path(Path(part.out)).exists()
    a, b = _weights(whole.path), _weights(resumed.path)
    assert all(np.array_equal(a[k], b[k]) for k in a)  # bitwise: same data, same order, one thread
    assert resumed.meta["steps"] == whole.meta["steps"] == 24
    assert whole.meta["device"] == resumed.meta["device"] == "cpu"


def test_a_run_resumed_on_another_device_records_both(corpus, tmp_path):
    """A state saved on a GPU box and finished on a CPU (states load to the CPU) says cuda+cpu."""
    import torch

    cfg = TrainConfig("l1", corpus, train_bytes=32 * 128 * 12, seed=4, threads=1, out=str(tmp_path / "a.safetensors"),
                      final_eval_bytes=2048)
    with pytest.raises(TrainingStopped) as stopped:
        train_model(cfg, should_stop=lambda: True)
    state = torch.load(stopped.value.path, weights_only=True)
    assert state["devices"] == ["cpu"]
    torch.save({**state, "devices": ["cuda"]}, stopped.value.path)  # as a GPU box would have saved it
    assert train_model(TrainConfig(**{**cfg.__dict__, "resume": True})).meta["device"] == "cuda+cpu"


def test_resume_refuses_a_state_from_another_recipe(corpus, tmp_path):
    cfg = TrainConfig("l1", corpus, train_bytes=32 * 128 * 12, seed=4, threads=1, out=str(tmp_path / "a.safetensors"))
    with pytest.raises(TrainingStopped):
        train_model(cfg, should_stop=lambda: True)
    from ziplab.errors import ParameterError

    with pytest.raises(ParameterError, match="different run"):
        train_model(TrainConfig(**{**cfg.__dict__, "seed": 5, "resume": True}))


def test_sigterm_under_torchrun_saves_state_and_resume_finishes_the_same_run(corpus, tmp_path):
    budget = ["--train-bytes", str(32 * 128 * 400), "--state-every", "5"]
    ref = tmp_path / "ref" / "l1.safetensors"
    r = subprocess.run(_train_cmd(corpus, ref, 2, *budget), capture_output=True, env=_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "run" / "l1.safetensors"
    p = subprocess.Popen(_train_cmd(corpus, out, 2, *budget), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_env())
    deadline = time.time() + 300
    while not state_path(out).exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode != 0 and state_path(out).is_file(), err[-3000:]
    r = subprocess.run(_train_cmd(corpus, out, 2, *budget, "--resume"), capture_output=True, env=_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not state_path(out).exists()
    _close(_weights(ref), _weights(out))


def test_sweep_jobs_2_records_equal_jobs_1(corpus, tmp_path):
    def records(out: Path, jobs: int) -> dict:
        # 70 KB coded: with workers=2 each job process starts its own coding pool (and must stop it)
        s = SweepSettings(corpus=corpus, sizes=("l1", "t1", "l2"), train_bytes=8192, eval_bytes=70_000, out=str(out),
                          threads=1, jobs=jobs, workers=jobs)
        res = run_sweep(s)
        return {r["size"]: r for r in res["sizes"]}

    one, two = records(tmp_path / "one", 1), records(tmp_path / "two", 2)
    assert one.keys() == two.keys() == {"l1", "t1", "l2"}
    for size in one:
        for key in ("params", "train_bytes", "train_heldout_bpb", "cross_entropy_bpb", "verified_bytes", "checkpoint"):
            assert one[size][key] == two[size][key], (size, key)
        # the header names the checkpoint by its path, which differs between the two folders
        assert abs(one[size]["compressed_bytes"] - two[size]["compressed_bytes"]) <= 2


def _writer(out: str, fresh: dict, index: int) -> None:
    for j in range(5):
        update(Path(out), fresh, lambda res: add_record(res, {"size": f"w{index}-{j}", "family": "x",
                                                         "non_embedding_params": index}))


def test_concurrent_writers_never_lose_a_record(tmp_path):
    fresh = {"run_key": {"k": 1}, "sizes": [], "baselines": {}}
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), fresh, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {r["size"] for r in saved["sizes"]} == {f"w{i}-{j}" for i in range(4) for j in range(5)}
