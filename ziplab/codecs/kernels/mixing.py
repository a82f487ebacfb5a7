"""The context-mixing engine behind `mix`: adaptive context models, a gated logistic mixer and
two SSE stages, all in integer arithmetic (numba), so the probabilities are the same on every
CPU. Read it beside lpaq1: the design is the same family, written for lanes.

Bytes are coded as 8 binary decisions, most significant bit first. For each bit every model
gives a probability in the stretch domain (st = ln(p/(1-p)), 8 fractional bits, clamped to
±2047); the mixer adds them with weights chosen by a small context, and learns online from the
coding error. Inputs:

  orders 0,1,2,3,4,6   hashed byte contexts + the bits of the current byte so far -> adaptive
                       probability counters (22-bit probability, count-driven rate)
  word                 hash of the letters of the current word (case-folded)
  match                the byte that followed the last occurrence of the last MATCH_MIN bytes;
                       its expected bit, weighted by an adaptive counter per match length
  neural               the bit probability implied by a pretrained model's byte distribution,
                       one input per model (none: `mix --model none` is pure context mixing)

Engine 3 (mix format 3) adds five contexts (order 5; the sparse pairs bytes 2-3, bytes 3-4 and
bytes 1+3; the previous word with the current one), up to two neural models, and two adaptive
maps over the neural prediction (SSE by order-1 and by hashed order-2 context) whose outputs are
mixer inputs too: the encoder and decoder refine the frozen network's output identically from the
bytes already coded. Engine 2 (format 2 files) is the same code with those parts switched off;
its arithmetic is unchanged, so its files decode to the same bytes.

Lanes: the block is cut into L contiguous lanes that advance in lockstep (as in `nn`), so the
neural model runs batched. The context tables are shared by all lanes; each lane has its own
history. For each bit position every active lane is predicted first, then coded, then every lane
updates in lane order — the decoder repeats exactly this schedule, so both sides see the same
tables at every prediction.

Memory: each bit of each lane reads ~20 random lines of tables far larger than the caches. Once a
lane's bit is known, the lines its next bit will read are asked for (`_prefetch_bit`), so they
arrive while the other lanes are updated: a step at 64 lanes went from ~205 to ~125 us (level 2,
Zen 5). A hint changes no value.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .mixing_layout import (  # noqa: F401 - the engine's shape, used here and as mixing.NAME
    APM_CELLS,
    COUNT_LIMIT,
    ENGINES,
    FIXED_TABLE_BYTES,
    FRESH,
    MASK32,
    MASK56,
    MATCH_BITS,
    MATCH_MIN,
    MAX_NEURAL,
    MIXER_SHIFT,
    N_CONTEXTS,
    N_MIXERS,
    N_NAPM,
    NAPM_BYTES,
    NEW_CONTEXT_NAMES,
    NO_CONTEXT,
    NO_NEURAL_SSE,
    NO_NEW_CONTEXTS,
    NO_THIRD_MIXER,
    P_ABLATE,
    P_BITS,
    P_ENGINE,
    P_IBIAS,
    P_IMATCH,
    P_INAPM,
    P_INEURAL,
    P_L,
    P_LEN,
    P_MIXERS,
    P_NCTX,
    P_NEURAL,
    P_NIN,
    P_NNAPM,
    P_SSE,
    P_T,
    PHI,
    State,
    input_layout,
    state_bytes,
)
from .prefetch import prefetch
from .mixing_tables import (  # built in decimal: the same bits everywhere
    RECIP,
    SQUASH,
    STRETCH,
    STRETCH_MAX,
)


def _apm_row() -> np.ndarray:
    """An SSE row's initial cells: the identity map on the stretch axis."""
    return np.array([SQUASH[min(2 * STRETCH_MAX, max(0, (j - 16) * 128 + STRETCH_MAX))] for j in range(APM_CELLS)],
                    dtype=np.int32)


def new_state(lanes: int, steps: int, table_bits: int, neural: int, sse: bool = True,
              reuse: State | None = None, engine: int = 2, ablate: int = 0) -> State:
    """Fresh tables: every counter at p = 1/2, count 0; weights favour the neural models if any
    (`neural`: how many, at most 1 on engine 2, MAX_NEURAL on engine 3). `reuse`: an earlier
    state whose big arrays are refilled in place rather than allocated anew (the result is the
    same state either way). `ablate`: engine-3 parts to leave out (the benchmark's ablation)."""
    L = lanes
    neural = int(neural)
    if engine not in ENGINES or not 0 <= neural <= (1 if engine == 2 else MAX_NEURAL):
        raise ValueError(f"mixing engine {engine} with {neural} neural models")
    n_ctx, i_match, i_neural, i_napm, n_napm, i_bias, n_in = input_layout(engine, neural, ablate)
    mixers = 2 if ablate & NO_THIRD_MIXER else N_MIXERS[engine]
    weights = np.zeros((mixers, 2048 if engine >= 3 else 1024, n_in), dtype=np.int64)
    if neural:
        weights[:, :, i_neural:i_neural + neural] = (1 << MIXER_SHIFT) // neural
        weights[:, :, :i_neural] = (1 << MIXER_SHIFT) // 16
    else:
        weights[:, :, :i_neural] = (1 << MIXER_SHIFT) // 4
    old = reuse
    if old is not None and old.slots.shape == (n_ctx, 1 << table_bits):
        slots = old.slots
        slots.fill(FRESH)
    else:
        slots = np.full((n_ctx, 1 << table_bits), FRESH, dtype=np.uint32)
    apm = old.apm if old is not None else np.empty((2, 65536, APM_CELLS), dtype=np.int32)  # kernels widen to int64
    apm[:] = _apm_row()
    match_tab = old.match_tab if old is not None else np.empty(1 << MATCH_BITS, dtype=np.int32)
    match_tab.fill(-1)
    if old is not None and old.buf.size == L * steps:
        buf = old.buf
        buf.fill(0)
    else:
        buf = np.zeros(L * steps, dtype=np.uint8)
    if old is not None and old.napm.shape[0] == n_napm:
        napm = old.napm
    else:
        napm = np.empty((n_napm, 65536, APM_CELLS), dtype=np.int32)
    napm[:] = _apm_row()
    return State(
        slots=slots,
        base=np.zeros((L, n_ctx), dtype=np.int64), idx=np.zeros((L, n_ctx), dtype=np.int64),
        hist=np.zeros(L, dtype=np.int64), word=np.zeros(L, dtype=np.int64), c0=np.ones(L, dtype=np.int64),
        x=np.zeros((L, n_in), dtype=np.int64), weights=weights, mix_p=np.zeros((L, 3), dtype=np.int64),
        mix_sel=np.zeros((L, 3), dtype=np.int64), apm=apm, apm_cell=np.zeros(L, dtype=np.int64),
        match_tab=match_tab, match_ptr=np.full(L, -1, dtype=np.int64),
        match_len=np.zeros(L, dtype=np.int64), match_cnt=np.full((64, 2), 1 << 31, dtype=np.uint32),
        match_bit=np.full(L, -1, dtype=np.int64),
        buf=buf, word2=np.zeros(L, dtype=np.int64), napm=napm, napm_cell=np.zeros((L, N_NAPM), dtype=np.int64),
        params=np.array([L, steps, table_bits, neural, int(sse), engine, n_ctx, i_match, i_neural, i_napm, n_napm,
                         i_bias, n_in, mixers, ablate], dtype=np.int64),
    )


# ---- small integer helpers -------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _hash(a: int, b: int) -> int:
    return (((a * PHI) & MASK32) ^ ((b + 0x7F4A7C15) * 0x85EBCA77 & MASK32)) * 0xC2B2AE3D & MASK32


@njit(cache=True, nogil=True)
def _st_of_counter(s: int) -> int:
    """Stretch of a packed counter: both layouts (match counters: 22-bit probability << 10 | count;
    context slots: 16-bit probability << 16 | check | count) keep the top 12 probability bits at >> 20."""
    return STRETCH[s >> 20]


@njit(cache=True, nogil=True)
def update_counter(slots, row: int, i: int, bit: int, limit: int) -> None:
    """Match-model counters: 22-bit probability << 10 | 10-bit count."""
    s = np.int64(slots[row, i])
    n = s & 1023
    p = s >> 10
    p += (((bit << 22) - p) * RECIP[n]) >> 16
    p = min((1 << 22) - 1, max(1, p))
    if n < limit:
        n += 1
    slots[row, i] = (p << 10) | n


@njit(cache=True, nogil=True)
def _slot_read(s: int, check: int) -> int:
    """A context slot as (p16 << 16 | n), or a fresh one if it belongs to another context."""
    if ((s >> 8) & 0xFF) != check:
        return (1 << 31)
    return (s & ~0xFF00)


@njit(cache=True, nogil=True)
def _slot_update(slots, row: int, i: int, check: int, bit: int, limit: int) -> None:
    s = _slot_read(np.int64(slots[row, i]), check)
    n = s & 0xFF
    p = s >> 16
    p += (((bit << 16) - p) * RECIP[n]) >> 16
    p = min(65535, max(1, p))
    if n < limit:
        n += 1
    slots[row, i] = (p << 16) | (check << 8) | n


@njit(cache=True, nogil=True)
def _squash(st: int) -> int:
    return SQUASH[min(STRETCH_MAX, max(-STRETCH_MAX, st)) + STRETCH_MAX]


@njit(cache=True, nogil=True)
def _neural_st(cums, j: int, l: int, c0: int, k: int) -> int:
    """Stretch of P(next bit = 1 | bits so far) from model j's byte distribution's cumulative
    sums for lane l, cums[j, l]. Indexed in place: a row view per lane and bit cost two atomic
    reference counts, ~5% of a step."""
    width = 256 >> k
    lo = (c0 - (1 << k)) * width
    mid = lo + width // 2
    hi = lo + width
    total = cums[j, l, hi] - cums[j, l, lo]
    if total <= 0.0:
        return 0
    p16 = int(np.floor((cums[j, l, hi] - cums[j, l, mid]) / total * 65536.0))
    return STRETCH[min(4095, max(0, p16 >> 4))]


@njit(cache=True, nogil=True)
def _neural_sse(S, l: int, c0: int) -> None:
    """Engine 3: the neural models' mean stretch through two adaptive maps (by order-1 context and
    by hashed order-2 context, both with the bits so far), each interpolated between its two
    nearest cells; their outputs are mixer inputs. The cells used are kept for the update."""
    i_neural, neural, i_napm = S.params[P_INEURAL], S.params[P_NEURAL], S.params[P_INAPM]
    total = 0
    for j in range(neural):
        total += S.x[l, i_neural + j]
    st = total // neural
    pos = min(2 * STRETCH_MAX, max(0, st + STRETCH_MAX))
    cell = pos >> 7
    w = pos & 127
    h = S.hist[l]
    rows = ((c0 | ((h & 0xFF) << 8)) & 0xFFFF, ((_hash(h & 0xFFFF, 11) + c0 * PHI) >> 16) & 0xFFFF)
    for q in range(2):
        p = (np.int64(S.napm[q, rows[q], cell]) * (128 - w) + np.int64(S.napm[q, rows[q], cell + 1]) * w) >> 7
        S.x[l, i_napm + q] = STRETCH[p >> 4]
        S.napm_cell[l, q] = rows[q] * 64 + cell + (w >> 6)


@njit(cache=True, nogil=True)
def _prefetch_bit(S, l: int, c0: int) -> None:
    """Start loading the lines that predicting lane l's next bit (bits so far: c0) will read
    from the big tables — its context slots and its SSE rows (`prefetch`) — so that they arrive
    while the other lanes are updated. Only a hint: no value depends on it."""
    bits = S.params[P_BITS]
    mask = (1 << bits) - 1
    for o in range(1, S.params[P_NCTX]):  # order 0's 64K slots stay in cache
        prefetch(S.slots, (o << bits) + (_hash(S.base[l, o], c0) & mask))
    h = S.hist[l]
    row = (c0 | ((h & 0xFF) << 8)) & 0xFFFF  # the second SSE stage's row, and the first neural map's
    for line in range(0, APM_CELLS, 16):  # a row of 33 int32 spans three lines
        prefetch(S.apm, (65536 + row) * APM_CELLS + line)
    if S.params[P_NNAPM]:
        row2 = ((_hash(h & 0xFFFF, 11) + c0 * PHI) >> 16) & 0xFFFF
        for line in range(0, APM_CELLS, 16):
            prefetch(S.napm, row * APM_CELLS + line)
            prefetch(S.napm, (65536 + row2) * APM_CELLS + line)


# ---- byte boundaries -------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def begin_byte(S, t: int, active: int) -> None:
    """Per-lane context hashes for byte t."""
    for l in range(active):
        h = S.hist[l]
        S.base[l, 0] = 0
        S.base[l, 1] = _hash(h & 0xFF, 1)
        S.base[l, 2] = _hash(h & 0xFFFF, 2)
        S.base[l, 3] = _hash(h & 0xFFFFFF, 3)
        S.base[l, 4] = _hash(h & 0xFFFFFFFF, 4)
        S.base[l, 5] = _hash(_hash(h & 0xFFFFFFFF, 5) + ((h >> 32) & 0xFFFF), 6)
        S.base[l, 6] = _hash(S.word[l], 7)
        if S.params[P_NCTX] > 7:
            S.base[l, 7] = _hash(_hash(h & 0xFFFFFFFF, 12) + ((h >> 32) & 0xFF), 13)  # order 5
            S.base[l, 8] = _hash((h >> 8) & 0xFFFF, 14)  # bytes 2-3
            S.base[l, 9] = _hash(S.word[l] + S.word2[l] * 31, 15)  # previous word + this one
            S.base[l, 10] = _hash((h >> 16) & 0xFFFF, 16)  # bytes 3-4
            S.base[l, 11] = _hash((h & 0xFF) | ((h >> 8) & 0xFF00), 17)  # bytes 1 and 3
            knocked = S.params[P_ABLATE] // NO_CONTEXT
            if knocked:  # the benchmark's per-context ablation only
                for i in range(5):
                    if knocked >> i & 1:
                        S.base[l, 7 + i] = 0
        S.c0[l] = 1
        _prefetch_bit(S, l, 1)


@njit(cache=True, nogil=True)
def end_byte(S, t: int, active: int) -> None:
    """After the 8th bit: history, word hash, match bookkeeping and the byte itself."""
    T = S.params[1]
    for l in range(active):
        b = S.c0[l] & 0xFF
        pos = l * T + t
        S.buf[pos] = b
        if S.match_ptr[l] >= 0:
            if S.buf[S.match_ptr[l]] == b:
                S.match_len[l] += 1
                S.match_ptr[l] += 1
                if S.match_ptr[l] >= S.buf.size or S.match_ptr[l] % T > t:
                    S.match_len[l] = 0  # ran into bytes not yet coded
            else:
                S.match_len[l] = 0
        if S.match_len[l] == 0:
            S.match_ptr[l] = -1
        S.hist[l] = ((S.hist[l] << 8) | b) & MASK56
        lower = b | 32 if 65 <= b <= 90 else b
        if 97 <= lower <= 122:
            S.word[l] = _hash(S.word[l] + lower, 9)
        elif S.word[l] != 0:
            S.word2[l] = S.word[l]
            S.word[l] = 0
        if t + 1 >= MATCH_MIN:  # look up the last MATCH_MIN bytes before recording where they are now
            key = _hash(S.hist[l] & 0xFFFFFFFFFFFF, 8) & ((1 << MATCH_BITS) - 1)
            cand = S.match_tab[key]
            if S.match_len[l] == 0 and 0 <= cand < S.buf.size and cand % T <= t:  # coded by step t
                S.match_ptr[l] = cand
                S.match_len[l] = 1
            S.match_tab[key] = pos + 1


# ---- one bit of every active lane ----------------------------------------------------------
@njit(cache=True, nogil=True)
def predict_bit(S, cums, k: int, active: int, out_p) -> None:
    """16-bit P(bit = 1) for bit k of every active lane into out_p."""
    mask = (1 << S.params[P_BITS]) - 1
    neural = S.params[P_NEURAL]
    n_ctx, i_match, i_neural = S.params[P_NCTX], S.params[P_IMATCH], S.params[P_INEURAL]
    i_napm, n_napm, i_bias, n_in = S.params[P_INAPM], S.params[P_NNAPM], S.params[P_IBIAS], S.params[P_NIN]
    # first every lane's slots, loaded into x (no load waits on another, so the cache misses of
    # all lanes overlap), then each lane's prediction from them
    for l in range(active):
        c0 = S.c0[l]
        for o in range(n_ctx):
            if o == 0:
                h = ((c0 & 0xFF) << 24) | c0
            else:
                h = _hash(S.base[l, o], c0)
            S.idx[l, o] = h
            S.x[l, o] = S.slots[o, h & mask]
    for l in range(active):
        c0 = S.c0[l]
        prev = S.hist[l] & 0xFF
        seen = 0  # highest order whose context has been seen before (0..5)
        for o in range(n_ctx):
            s = _slot_read(np.int64(S.x[l, o]), S.idx[l, o] >> 24)
            S.x[l, o] = _st_of_counter(s)
            if o < 6 and (s & 0xFF) > 0:
                seen = o
        # match model: the expected bit, if the bits so far agree with the predicted byte
        S.x[l, i_match] = 0
        S.match_bit[l] = -1
        if S.match_ptr[l] >= 0:
            pb = np.int64(S.buf[S.match_ptr[l]]) | 256
            if (pb >> (8 - k)) == c0:
                bit = (pb >> (7 - k)) & 1
                S.match_bit[l] = bit
                st = _st_of_counter(np.int64(S.match_cnt[min(S.match_len[l], 31), bit]))
                S.x[l, i_match] = st if bit else -st
            else:
                S.match_len[l] = 0
                S.match_ptr[l] = -1
        for j in range(neural):
            S.x[l, i_neural + j] = _neural_st(cums, j, l, c0, k)
        if n_napm:
            _neural_sse(S, l, c0)
        S.x[l, i_bias] = 256
        ml = S.match_len[l]
        sel = (seen * 4 + (0 if ml == 0 else (1 if ml < 16 else (2 if ml < 32 else 3)))) * 8 + k
        conf = abs(S.x[l, i_neural])
        sel0 = c0 + 256 * (0 if conf < 128 else (1 if conf < 512 else (2 if conf < 1024 else 3)))
        S.mix_sel[l, 0] = sel0
        S.mix_sel[l, 1] = sel
        dot0 = 0
        dot1 = 0
        for i in range(n_in):
            dot0 += S.weights[0, sel0, i] * S.x[l, i]
            dot1 += S.weights[1, sel, i] * S.x[l, i]
        st0 = min(STRETCH_MAX, max(-STRETCH_MAX, dot0 >> MIXER_SHIFT))
        st1 = min(STRETCH_MAX, max(-STRETCH_MAX, dot1 >> MIXER_SHIFT))
        S.mix_p[l, 0] = _squash(st0)
        S.mix_p[l, 1] = _squash(st1)
        if S.params[P_MIXERS] == 3:
            sel2 = prev * 8 + k
            S.mix_sel[l, 2] = sel2
            dot2 = 0
            for i in range(n_in):
                dot2 += S.weights[2, sel2, i] * S.x[l, i]
            st2 = min(STRETCH_MAX, max(-STRETCH_MAX, dot2 >> MIXER_SHIFT))
            S.mix_p[l, 2] = _squash(st2)
            st = (st0 + st1 + st2) // 3
        else:
            st = (st0 + st1) >> 1
        p_mix = _squash(st)
        # SSE: interpolate between the two nearest of 33 cells on the stretch axis
        pos = st + STRETCH_MAX  # 0..4094
        cell = pos >> 7
        w = pos & 127
        r1 = (c0 | (prev << 8)) & 0xFFFF
        p_a0 = (S.apm[0, c0, cell] * (128 - w) + S.apm[0, c0, cell + 1] * w) >> 7
        p_a1 = (S.apm[1, r1, cell] * (128 - w) + S.apm[1, r1, cell + 1] * w) >> 7
        S.apm_cell[l] = cell + (w >> 6)
        p = (2 * p_mix + p_a0 + p_a1) >> 2 if S.params[P_SSE] else p_mix
        out_p[l] = min(65535, max(1, p))


@njit(cache=True, nogil=True)
def update_bit(S, bits, k: int, active: int, lr: int) -> None:
    """Learn from bit k of every active lane, in lane order."""
    for l in range(active):
        bit = np.int64(bits[l])
        c0 = S.c0[l]
        prev = S.hist[l] & 0xFF
        sel0 = S.mix_sel[l, 0]
        sel = S.mix_sel[l, 1]
        mask = (1 << S.params[P_BITS]) - 1
        for o in range(S.params[P_NCTX]):
            h = S.idx[l, o]
            _slot_update(S.slots, o, h & mask, h >> 24, bit, COUNT_LIMIT)
        expected = S.match_bit[l]
        if expected >= 0:
            update_counter(S.match_cnt, min(S.match_len[l], 31), expected, 1 if bit == expected else 0, 1023)
        err0 = ((bit << 16) - S.mix_p[l, 0]) * lr >> 10
        err1 = ((bit << 16) - S.mix_p[l, 1]) * lr >> 10
        for i in range(S.params[P_NIN]):
            S.weights[0, sel0, i] += (S.x[l, i] * err0) >> 10
            S.weights[1, sel, i] += (S.x[l, i] * err1) >> 10
        if S.params[P_MIXERS] == 3:
            sel2 = S.mix_sel[l, 2]
            err2 = ((bit << 16) - S.mix_p[l, 2]) * lr >> 10
            for i in range(S.params[P_NIN]):
                S.weights[2, sel2, i] += (S.x[l, i] * err2) >> 10
        for q in range(S.params[P_NNAPM]):
            row = S.napm_cell[l, q] >> 6
            cell = S.napm_cell[l, q] & 63
            S.napm[q, row, cell] += ((bit << 16) - S.napm[q, row, cell]) >> 6
        j = S.apm_cell[l]
        S.apm[0, c0, j] += ((bit << 16) - S.apm[0, c0, j]) >> 6
        r = (c0 | (prev << 8)) & 0xFFFF
        S.apm[1, r, j] += ((bit << 16) - S.apm[1, r, j]) >> 6
        S.c0[l] = (c0 << 1) | bit
        if k < 7:  # the next byte's lines: begin_byte, once its contexts are hashed
            _prefetch_bit(S, l, S.c0[l])
