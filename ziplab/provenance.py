"""The provenance record every results file carries: which ziplab made it (`ziplab.__version__`,
and the git commit when run from a checkout), on what machine (CPU, ISA flags), with which
libraries and how many threads.

One record, one shape, under the key "provenance" at the top of every results JSON (benchmarks,
sweeps, grids, their side files, `ziplab bench --json`). `record()` reads package metadata and
/proc, never imports numpy, numba or torch itself: details that only a loaded library can tell
(torch's kernel level and threads) are added when the run already loaded it.

`stamp` puts the record on a file that several runs write over time (a grid folder, a benchmark
that keeps earlier sections): the newest writer's record is "provenance", and a writer of another
origin (another version, commit, machine or library set) is kept under "earlier_provenance".

Files written before this record existed were given one by benchmarks/backfill_provenance.py from
what they recorded themselves and from git history, marked `"backfilled": {...}`.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .hardware import cpu_flags, cpu_name, native_bf16, package_version, torch_capability

#: the keys every provenance record holds (a value may be None where it is not known)
REQUIRED = ("ziplab_version", "git_commit", "git_dirty", "python", "platform", "cpu", "arch", "cpu_count",
            "isa_flags", "versions", "threads")
#: libraries whose versions are recorded (from package metadata: recording never imports them)
LIBRARIES = ("numpy", "numba", "torch", "constriction", "scipy")
#: environment variables that change kernels or thread counts
ENV_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "NUMBA_CPU_NAME",
            "NUMBA_BOUNDSCHECK", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
#: what must match for two records to be of one origin (`stamp` keeps a record of another apart)
ORIGIN = ("ziplab_version", "git_commit", "git_dirty", "python", "cpu", "isa_flags", "versions")

#: the checkout this ziplab was imported from, if it is one (a wheel's site-packages is not)
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout ziplab runs from; (None, None) outside one. Dirty: the
    tracked code (ziplab/, benchmarks/, pyproject.toml) differs from the commit. Asked once per process."""
    if not ((SOURCE_ROOT / ".git").exists() and (SOURCE_ROOT / "pyproject.toml").is_file()):
        return None, None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "ziplab", "benchmarks", "pyproject.toml")
    return commit, (None if status is None else bool(status))


def _threads() -> dict[str, Any]:
    threads: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        threads.update(torch=torch.get_num_threads(), torch_interop=torch.get_num_interop_threads())
    numba = sys.modules.get("numba")
    if numba is not None:
        threads["numba"] = int(numba.config.NUMBA_NUM_THREADS)
    return threads


def record() -> dict[str, Any]:
    """This process's provenance record (see the module docstring)."""
    commit, dirty = git_state()
    out: dict[str, Any] = {
        "ziplab_version": __version__, "git_commit": commit, "git_dirty": dirty,
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(), "cpu": cpu_name(), "arch": platform.machine(), "cpu_count": os.cpu_count(),
        "isa_flags": cpu_flags(), "versions": {name: package_version(name) for name in LIBRARIES},
        "threads": _threads(),
    }
    if "torch" in sys.modules:  # only what a loaded torch can tell; recording never loads it
        torch = sys.modules["torch"]
        out.update(torch_capability=torch_capability(), native_bf16=native_bf16(),
                   float32_matmul_precision=torch.get_float32_matmul_precision())
    env = {var: os.environ[var] for var in ENV_VARS if os.environ.get(var)}
    if env:
        out["env"] = env
    out["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return out


def same_origin(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ORIGIN)


def stamp(data: dict, current: Mapping[str, Any] | None = None) -> dict:
    """Set `data["provenance"]` to `current` (default: `record()`); a record already there of
    another origin is kept in `data["earlier_provenance"]` (once). Returns `data`."""
    current = dict(current) if current is not None else record()
    old = data.get("provenance")
    if isinstance(old, dict) and not same_origin(old, current):
        earlier = data.setdefault("earlier_provenance", [])
        if not any(same_origin(old, e) for e in earlier):
            earlier.append(old)
    data["provenance"] = current
    return data


def summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """cpu, cpu_count, torch and ziplab versions and commit of a results file, from its provenance
    record or, in a file written before there was one, from its older "environment"/"machine" record."""
    prov = data.get("provenance")
    if isinstance(prov, dict):
        return {"cpu": prov.get("cpu"), "cpu_count": prov.get("cpu_count"),
                "torch": (prov.get("versions") or {}).get("torch"), "ziplab": prov.get("ziplab_version"),
                "commit": prov.get("git_commit")}
    old = next((data[k] for k in ("environment", "machine") if isinstance(data.get(k), dict)), {})
    return {"cpu": old.get("cpu"), "cpu_count": old.get("cpu_count"), "torch": old.get("torch"),
            "ziplab": old.get("ziplab"), "commit": None}


def lines(prov: Mapping[str, Any]) -> list[str]:
    """The record as Markdown list items (nested mappings one item per entry)."""
    out = []
    for key, value in prov.items():
        if isinstance(value, dict):
            out += [f"- {key}.{k}: {v}" for k, v in value.items()]
        else:
            out.append(f"- {key}: {value}")
    return out
