"""The context-mixing engine's shape (`mixing`): its constants, the fields of its state, the
mixer's input layout per engine and what a state costs in memory. Kept apart from the kernels so
the budget (`mix.decode_memory`) and the layout can be read without them."""

from __future__ import annotations

from collections import namedtuple

ENGINES = (2, 3)
#: context rows per engine: orders 0,1,2,3,4,6 and the word context; engine 3 adds five (see above)
N_CONTEXTS = {2: 7, 3: 12}
MAX_NEURAL = 2  # neural models one engine-3 state mixes
N_NAPM = 2  # engine 3: SSE maps over the neural prediction (order 1, hashed order 2)
N_MIXERS = {2: 2, 3: 3}  # engine 3 adds a mixer whose weight set is chosen by the last byte
MATCH_MIN = 6  # bytes of context the match model hashes
MATCH_BITS = 22
APM_CELLS = 33
COUNT_LIMIT = 255  # a context counter's rate stops falling at 1/(255 + 1.5)
MIXER_SHIFT = 16  # weights: 1.0 = 65536
PHI = 0x9E3779B1
MASK32 = 0xFFFFFFFF
MASK56 = (1 << 56) - 1
FRESH = 1 << 31  # a context slot never used: p = 1/2, check 0, count 0

State = namedtuple("State", [
    "slots",      # uint32 [contexts, 2^bits]: 16-bit probability << 16 | 8-bit check << 8 | count
    "base",       # int64 [L, contexts]: per-byte context hash of each order
    "idx",        # int64 [L, contexts]: slot used for the current bit
    "hist",       # int64 [L]: last 7 bytes, newest lowest
    "word",       # int64 [L]: hash of the current word
    "c0",         # int64 [L]: 1 followed by the bits of the current byte so far
    "x",          # int64 [L, inputs]: the mixer's inputs for the current bit (layout: `P_*` below)
    "weights",    # int64 [mixers, 2048, inputs]: mixer weight sets (by c0 x neural confidence; by confident
                  # order x bit; engine 3 also by last byte x bit)
    "mix_p",      # int64 [L, 3]: the mixers' 16-bit outputs
    "mix_sel",    # int64 [L, 3]: the weight set each mixer used
    "apm",        # int32 [2, 65536, APM_CELLS]: SSE tables (by c0; by c0 x last byte), 16-bit values
    "apm_cell",   # int64 [L]: the SSE cell nearest the mixer's output (both stages update it)
    "match_tab",  # int32 [2^MATCH_BITS]: hash of the last MATCH_MIN bytes -> position after them (< 2^28)
    "match_ptr",  # int64 [L]: position of the predicted byte in `buf` (-1: none)
    "match_len",  # int64 [L]
    "match_cnt",  # uint32 [64, 2]: counter per (min(len, 31), expected bit)
    "match_bit",  # int64 [L]: the bit the match model expects for the current bit (-1: none)
    "buf",        # uint8 [L * T]: the lanes' bytes (decoder: filled as decoded)
    "word2",      # int64 [L]: hash of the previous word (engine 3)
    "napm",       # int32 [N_NAPM or 0, 65536, APM_CELLS]: SSE maps over the neural prediction (engine 3)
    "napm_cell",  # int64 [L, N_NAPM]: row * 64 + cell of each neural SSE map for the current bit
    "params",     # int64 [P_LEN]: see P_* below
])

# params slots: the block's shape and the engine's input layout
(P_L, P_T, P_BITS, P_NEURAL, P_SSE, P_ENGINE, P_NCTX, P_IMATCH, P_INEURAL, P_INAPM, P_NNAPM, P_IBIAS, P_NIN,
 P_MIXERS, P_ABLATE) = range(15)
P_LEN = 15
#: engine 3's parts that the benchmark's ablation switches off (a bit mask; files never carry one)
NO_NEW_CONTEXTS, NO_NEURAL_SSE, NO_THIRD_MIXER = 1, 2, 4
#: one of engine 3's five new contexts without its information (its hash held at 0, so its input
#: is one more order-0 model): NO_CONTEXT << i for context 7 + i (order 5, bytes 2-3, word
#: bigram, bytes 3-4, bytes 1+3)
NO_CONTEXT = 8
NEW_CONTEXT_NAMES = ("order 5", "bytes 2-3", "word bigram", "bytes 3-4", "bytes 1+3")


def input_layout(engine: int, neural: int, ablate: int = 0) -> tuple[int, int, int, int, int, int, int]:
    """(contexts, match, first neural, first neural SSE, neural SSE count, bias, inputs): the
    mixer's inputs in order. Engine 2 keeps a neural slot even without a model (its input is 0)."""
    n_ctx = N_CONTEXTS[2 if ablate & NO_NEW_CONTEXTS else engine]
    i_match = n_ctx
    i_neural = i_match + 1
    n_neural_slots = max(1, neural) if engine == 2 else neural
    i_napm = i_neural + n_neural_slots
    n_napm = N_NAPM if engine >= 3 and neural and not ablate & NO_NEURAL_SSE else 0
    i_bias = i_napm + n_napm
    return n_ctx, i_match, i_neural, i_napm, n_napm, i_bias, i_bias + 1


#: bytes of the tables every block has whatever its length (SSE and match tables): a format constant
FIXED_TABLE_BYTES = 2 * 65536 * APM_CELLS * 4 + (1 << MATCH_BITS) * 4
NAPM_BYTES = 65536 * APM_CELLS * 4  # one neural SSE map


def state_bytes(lanes: int, steps: int, table_bits: int, engine: int = 2, neural: int = 1, ablate: int = 0) -> int:
    """Bytes `new_state` allocates: context slots, fixed tables, the lanes' bytes and small state."""
    n_ctx, _, _, _, n_napm, _, n_in = input_layout(engine, neural, ablate)
    slots = (n_ctx * 4) << table_bits
    per_lane = 8 * (2 * n_ctx + n_in + 16 + N_NAPM)
    return (slots + FIXED_TABLE_BYTES + n_napm * NAPM_BYTES + lanes * steps + lanes * per_lane + 1024
            + (2 if ablate & NO_THIRD_MIXER else N_MIXERS[engine]) * (2048 if engine >= 3 else 1024) * n_in * 8)
