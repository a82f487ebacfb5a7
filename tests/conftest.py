"""Shared inputs: every codec is round-trip tested on the same hard and ordinary cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
BENCH_DIR = SHARED / "bench"
GUTENBERG_DIR = SHARED / "gutenberg"


def sample_inputs() -> dict[str, bytes]:
    rng = np.random.default_rng(1234)
    text = b"It was the best of times, it was the worst of times, it was the age of wisdom. "
    return {
        "empty": b"",
        "one": b"x",
        "two": b"\x00\xff",
        "all256": bytes(range(256)),
        "all256x4": bytes(range(256)) * 4,
        "zeros": bytes(100_000),
        "run_ab": b"ab" * 20_000,
        "random": rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
        "random_small_alphabet": rng.integers(0, 4, 30_000, dtype=np.uint8).tobytes(),
        "text": text * 300,
        "skewed": rng.choice(256, 40_000, p=np.r_[0.9, np.full(255, 0.1 / 255)]).astype(np.uint8).tobytes(),
    }


SAMPLES = sample_inputs()


@pytest.fixture(params=sorted(SAMPLES), ids=sorted(SAMPLES))
def sample(request) -> bytes:
    return SAMPLES[request.param]


def missing_shared(what: str) -> None:
    """Without ../shared a local run skips the tests that read it; CI (CI=true) fails loudly,
    because there a missing corpus means the checks silently stopped running."""
    import os

    message = f"../shared/corpora/{what} is not present"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the shared corpora must be beside the checkout)")
    pytest.skip(message)


def bench_files() -> list[Path]:
    return sorted(BENCH_DIR.glob("*")) if BENCH_DIR.is_dir() else []


@pytest.fixture(params=[p.name for p in bench_files()] or ["missing"])
def bench_file(request) -> bytes:
    path = BENCH_DIR / request.param
    if not path.is_file():
        missing_shared("bench")
    return path.read_bytes()


#: what the CLI tests compress: text plus every byte value
CLI_DATA = SAMPLES["text"] + SAMPLES["all256"]


def zl(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`ziplab ARGS` in a real process."""
    return subprocess.run([sys.executable, "-m", "ziplab", *args], input=stdin, capture_output=True,
                          cwd=cwd, timeout=300)


@pytest.fixture
def src(tmp_path) -> Path:
    path = tmp_path / "data.txt"
    path.write_bytes(CLI_DATA)
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_quantised_model_cache(tmp_path_factory):
    """Tests (and the processes they start) keep the quantised-model cache to themselves."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ZIPLAB_CACHE_DIR", str(tmp_path_factory.mktemp("ziplab-cache")))
    yield
    mp.undo()
