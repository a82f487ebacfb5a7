"""What machine this is, as far as speed and numerics care: CPU model, ISA flags, torch's kernel
level, and whether bf16 is native. Every benchmark and sweep records it (through
`ziplab.provenance`), because every speed figure depends on it (a bf16 matmul is ~100x slower on
a CPU without native bf16). `torch_threads` sets torch's threads for a block and restores them."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import sys
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar
from importlib import metadata
from pathlib import Path

#: the ISA flags worth recording (from /proc/cpuinfo)
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "asimd",
         "sve")


P = ParamSpec("P")
R = TypeVar("R")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_name() -> str:
    """Model name from /proc/cpuinfo on Linux (platform.processor() is often empty there)."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _all_flags() -> set[str]:
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_flags() -> list[str]:
    """The flags in FLAGS this CPU has (what benchmark records list)."""
    have = _all_flags()
    return [f for f in FLAGS if f in have]


def cpu_has(*flags: str) -> bool:
    """Whether /proc/cpuinfo lists every one of `flags` (False off Linux)."""
    have = _all_flags()
    return all(f in have for f in flags)


def torch_capability() -> str | None:
    """torch's CPU kernel level (DEFAULT, AVX2, AVX512...; ATEN_CPU_CAPABILITY lowers it)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.backends.cpu.get_cpu_capability()


def native_bf16() -> bool:
    """True where bf16 matmuls run in hardware (AVX-512 BF16 or AMX) and neither torch's nor
    oneDNN's kernel level has been lowered below it. Elsewhere bf16 is emulated, ~100x slower
    than fp32, and oneDNN's bf16 LSTM has no kernel at all."""
    import torch

    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if isa not in ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX",
                   "AVX10_1_512_AMX_FP16", "AVX512_CORE_FP16", "AVX10_1_512"):
        return False
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def one_blas_thread() -> None:
    """numpy's BLAS to one thread in the `ziplab` command's processes (the library never calls
    this), unless OPENBLAS_NUM_THREADS says otherwise; called before numpy loads. The coding
    engines multiply on kernels of their own; numpy's BLAS only runs the self-test's small
    float64 products at start, after which its idle threads spun for ~0.1 s of a core the
    workers needed."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` inside the block and restored after it (None or
    0: unchanged), so a library call never leaves its caller's process with another setting."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: glibc's mallopt parameter numbers
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: free memory at the top of the heap kept for the next allocation rather than given back
HEAP_TRIM_THRESHOLD = 64 << 20


def tune_heap(mmap_threshold: int = 1 << 20, trim_threshold: int = HEAP_TRIM_THRESHOLD) -> bool:
    """glibc's heap for the `ziplab` command's own process (the library never calls this):

    - every allocation of at least `mmap_threshold` bytes is served by mmap, and so given back
      to the system when freed. By default glibc raises its threshold after a large free, so a
      codec's freed per-block arrays stay in a fragmented heap and a long stream's resident set
      creeps up by several blocks;
    - up to `trim_threshold` bytes of free memory at the heap's top are kept, not trimmed. The
      neural engines' per-step temporaries (torch's product outputs, ~0.5 MB) otherwise shrank
      and regrew the heap every step, each regrowth faulting in fresh pages: 3-5 s of system
      time in 10 s of `mix -2` on 1 MiB. Kept memory is below the peak already reached.

    Each is left alone where its MALLOC_*_ variable is set. False where there is no glibc."""
    if platform.system() != "Linux":
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = True
    for var, param, value in (("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, mmap_threshold),
                              ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, trim_threshold)):
        if not os.environ.get(var):
            ok = mallopt(param, int(value)) == 1 and ok
    return ok


@contextlib.contextmanager
def torch_state_restored() -> Iterator[None]:
    """torch's intra-op thread count and fp32 matmul precision as they were on entry, restored on
    exit: a coding run sets both for its engine (one thread beside worker processes; "highest"
    precision, which exact fp32 products need) without leaving its caller another setting. When
    torch was not loaded on entry the caller had no setting, and nothing is restored."""
    torch = sys.modules.get("torch")
    saved = (torch.get_num_threads(), torch.get_float32_matmul_precision()) if torch is not None else None
    try:
        yield
    finally:
        if saved is not None:
            if torch.get_num_threads() != saved[0]:
                torch.set_num_threads(saved[0])
            if torch.get_float32_matmul_precision() != saved[1]:
                torch.set_float32_matmul_precision(saved[1])


def restores_torch_state(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: `fn` runs inside `torch_state_restored`."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch_state_restored():
            return fn(*args, **kwargs)

    return wrapper
