"""One resource policy for decoding: what a file may make ziplab allocate, and how many processes.

A decoder's needs are stated from validated header fields alone (tables, per-lane state, the
decoded block, processes × model), and a member whose needs exceed the limit is refused before
anything is allocated — as `xz --memlimit` and zstd's window limit do. The limit comes from
`--memory-limit`, else the environment variable ZIPLAB_MEMORY_LIMIT, else 3/4 of the memory the
machine has available when ziplab starts (at least MIN_DEFAULT). Processes are capped by the CPU
count and by what the budget leaves after what they share.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import ParameterError, ZiplabError

ENV = "ZIPLAB_MEMORY_LIMIT"
#: a default never below this, so a machine reporting little available memory still decodes
#: what ziplab itself writes with default settings
MIN_DEFAULT = 1 << 30
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 10**3, "kib": 1 << 10, "m": 1 << 20, "mb": 10**6, "mib": 1 << 20,
          "g": 1 << 30, "gb": 10**9, "gib": 1 << 30, "t": 1 << 40, "tb": 10**12, "tib": 1 << 40}


#: a worker process's own cost (interpreter, numpy, numba, torch) before its predictor
WORKER_RUNTIME = 320 << 20


@dataclass(frozen=True)
class MemoryNeed:
    """What decoding one member needs, from its header alone: `shared` is held once by the
    decoding process whatever the worker count (the block's buffers, context tables);
    `predictor` is one predictor with its lanes' state, held by the process that decodes and by
    each worker (model-driven codecs); `streams` is how many processes the layout can use."""

    shared: int
    predictor: int = 0
    streams: int = 1

    def total(self, processes: int = 1) -> int:
        """Bytes in all when `processes` processes code (the calling one codes its share and
        holds the predictor that checked the model; each other is a worker with its own)."""
        processes = max(1, processes)
        return self.shared + self.predictor * processes + WORKER_RUNTIME * (processes - 1)

    def processes(self, limits: "Limits", wanted: int) -> int:
        """Processes to code with: at most `wanted`, `streams` and one per CPU, as many as fit."""
        return limits.processes(min(wanted, self.streams), self.total(1), self.predictor + WORKER_RUNTIME)


class MemoryLimitError(ZiplabError):
    """Decoding a member would need more memory than the limit allows."""


@dataclass(frozen=True)
class Limits:
    """What decoding may use: `memory` bytes in all (every process together), `cpus` processes."""

    memory: int
    cpus: int

    def check(self, need: int, what: str) -> None:
        """Refuse, in one line naming the need and the limit, before anything is allocated."""
        if need > self.memory:
            raise MemoryLimitError(
                f"{what} needs {format_size(need)} of memory to decode, over the limit of {format_size(self.memory)} "
                f"(raise it with --memory-limit or {ENV})")

    def processes(self, wanted: int, first: int, each: int) -> int:
        """Processes for work that wants `wanted` of them: at most one per CPU, and as many as fit
        when the first needs `first` bytes and each more `each`; at least 1."""
        room = 1 + (self.memory - first) // max(1, each)
        return max(1, min(int(wanted), self.cpus, int(room)))


def parse_size(text: str) -> int:
    """'512M', '2GiB', '1.5G', '4000000' -> bytes (binary units for bare K/M/G/T, as xz reads them)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ParameterError(f"cannot read {text!r} as a memory size (e.g. 512M, 2G, 1.5GiB)")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ParameterError(f"a memory limit must be positive, not {text!r}")
    return value


def format_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else physical memory from sysconf, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_memory() -> int:
    """ZIPLAB_MEMORY_LIMIT if set, else 3/4 of the available memory (at least MIN_DEFAULT)."""
    env = os.environ.get(ENV)
    if env:
        return parse_size(env)
    avail = available_memory()
    return max(MIN_DEFAULT, avail * 3 // 4) if avail else MIN_DEFAULT


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where there is one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_limits(memory: int | str | None = None) -> Limits:
    """The limits in force: `memory` (bytes or a size text) if given, else `default_memory()`."""
    if isinstance(memory, str):
        memory = parse_size(memory)
    return Limits(memory=int(memory) if memory is not None else default_memory(), cpus=cpu_count())
