"""`mix`'s level table and the layout rules of its blocks: which models, tables and mixer rate
a level means, how big a block's tables are, and how a block is cut into substreams (format 4).
Data and small functions only, read by the codec (`mix`) and the stream coder (`mix_stream`)."""

from __future__ import annotations

from typing import NamedTuple

#: the shipped models the levels mix (ziplab/models/shipped/NAME.safetensors)
FAST_MODEL = "l4-gutenberg-large"
STRONG_MODEL = "l5-gutenberg-large"


class Level(NamedTuple):
    table_bits: int  # each context table holds 2^bits 4-byte counters
    mixer_rate: int  # mixer learning rate (error multiplier)
    sse: bool = True  # the two SSE stages after the mixer (off only in the benchmark's ablation)
    models: tuple[str, ...] = ()  # format 3: the shipped models mixed unless --model says otherwise
    ablate: int = 0  # engine-3 parts left out (`mixing.NO_*`; only the benchmark's ablation sets it)
    substreams: int = 1  # format 4: a block's substreams, each with tables of its own (`block_substreams`)


#: formats 3 and 4 (mixer engine 3). Mixer rate 16 was the best of 6, 10, 16, 24, 32 on the first
#: 500,000 bytes of gutenberg dev.txt; the models per level come from the Pareto table in
#: benchmarks/results/mix.json (`pareto`). Tables are per substream: format 4 holds one set per
#: process that codes (two at most, at every level), format 3 one.
#: Two substreams of 64 lanes were chosen on a validation text (1 MiB of the Canterbury books
#: lcet10, plrabn12, alice29; l5, level 2): 1.7407 bpb against 1.7739 for one stream of 64 lanes;
#: 4 x 32 lanes 1.7464, 8 x 16 1.7461, 4 x 64 1.7492, 16 x 16 1.7720 (too little for each table)
#: Level 2 mixes the fast l4 since 0.9.1 (it was l5 before): 1.766 bpb against l5's 1.743 on the
#: validation text above (+1.3%; 1.585 against 1.555 on 1 MiB of dev.txt), coding 1 MiB in
#: ~3.6 s against ~6.4 s (Zen 5, 2 cores), which brings the default level within 1/15 of
#: xz -9e's speed (issue #27). Level 3 keeps l5, the strongest model.
LEVELS: dict[int, Level] = {
    1: Level(table_bits=20, mixer_rate=16, models=(FAST_MODEL,), substreams=2),  # at most 48 MB of tables each
    2: Level(table_bits=22, mixer_rate=16, models=(FAST_MODEL,), substreams=2),  # 192 MB
    # two models (l5 + l4) measured 1.5509 against l5 alone's 1.5469 at level 2: the weaker l4
    # costs more than it brings, so the strongest level is l5 with the biggest tables
    3: Level(table_bits=24, mixer_rate=16, models=(STRONG_MODEL,), substreams=2),  # 768 MB
}
#: lanes of each substream unless --lanes says otherwise (--lanes counts those of all substreams)
LANES_PER_SUBSTREAM = 64
#: a block's substreams hold at least this many bytes: a smaller block is cut into fewer (a small
#: file is one substream), so fresh tables and a second process are paid for where they pay
SUBSTREAM_MIN_BYTES = 1 << 16
#: format 2 (mixer engine 2, one model): mixer rate 10 was the best of 2, 6, 10, 16, 32
LEVELS_V2: dict[int, Level] = {
    1: Level(table_bits=20, mixer_rate=10),  # at most 28 MB of tables
    2: Level(table_bits=22, mixer_rate=10),  # 112 MB
    3: Level(table_bits=24, mixer_rate=10),  # 448 MB
}
MIXER = 3  # the mixer engine new files are coded with


def level_table(params: dict) -> dict[int, Level]:
    return LEVELS if mixer_of(params) >= 3 else LEVELS_V2


def mixer_of(params: dict) -> int:
    """The mixer engine a header names: format 2 headers carry none (engine 2)."""
    return int(params.get("mixer", 2))


def table_bits(level: int, n: int, mixer: int = MIXER) -> int:
    """Tables no bigger than a block of n bytes can fill (8 bit contexts per byte, x2 headroom),
    so small files do not pay for clearing hundreds of megabytes."""
    table = LEVELS if mixer >= 3 else LEVELS_V2
    return min(table[level].table_bits, max(16, n.bit_length() + 4))


def block_substreams(n: int, params: dict) -> int:
    """Substreams of an n-byte block: the header's count, fewer for a small block (format 4);
    formats 2 and 3 code a block as one stream (their headers carry no count)."""
    most = int(params.get("substreams", 1))
    return max(1, min(most, n // SUBSTREAM_MIN_BYTES))


def stream_params(params: dict) -> dict:
    """The params one substream is coded with: its share of the lanes (format 4)."""
    return {**params, "lanes": params["lanes"] // int(params.get("substreams", 1))}

