"""Quick probe of the huffman and lzh codecs against zlib, measured in the same run.

The machine is shared, so absolute MB/s are noisy: every speed is taken best-of-N and also
reported as a ratio to zlib measured right beside it.

    python benchmarks/lzh_probe.py [--reps 3] [--levels 1,6,9]

Prints a table and writes benchmarks/results/lzh_probe.json.
"""

from __future__ import annotations

import zlib

import numpy as np
from probe_common import best_time, coder_pair, interleaved_best, parse_args, text_files, write_results



def entropy_bytes(data: np.ndarray) -> float:
    f = np.bincount(data, minlength=256)
    p = f[f > 0] / f.sum()
    return float(-(f[f > 0] * np.log2(p)).sum() / 8)


def probe_huffman(name: str, raw: bytes, reps: int) -> dict:
    data = np.frombuffer(raw, np.uint8)
    encode, decode, _ = coder_pair("huffman", None, data)
    te, payload = best_time(lambda: encode(data), reps)
    td, out = best_time(lambda: decode(payload, len(raw)), reps)
    assert out.tobytes() == raw
    mb = len(raw) / 1e6
    return {
        "file": name,
        "bytes": len(raw),
        "size": len(payload),
        "vs_entropy": len(payload) / entropy_bytes(data),
        "enc_MBps": mb / te,
        "dec_MBps": mb / td,
    }


def probe_lzh(name: str, raw: bytes, level: int, reps: int) -> dict:
    data = np.frombuffer(raw, np.uint8)
    encode, decode, payload = coder_pair("lzh", level, data)
    z = zlib.compress(raw, level)
    secs = interleaved_best(
        {
            "enc": lambda: encode(data),
            "zlib_enc": lambda: zlib.compress(raw, level),
            "dec": lambda: decode(payload, len(raw)),
            "zlib_dec": lambda: zlib.decompress(z),
        },
        reps,
    )
    te, tze, td, tzd = (secs[k] for k in ("enc", "zlib_enc", "dec", "zlib_dec"))
    mb = len(raw) / 1e6
    return {
        "file": name,
        "level": level,
        "bytes": len(raw),
        "size": len(payload),
        "zlib_size": len(z),
        "size_vs_zlib": len(payload) / len(z),
        "enc_MBps": mb / te,
        "dec_MBps": mb / td,
        "zlib_enc_MBps": mb / tze,
        "zlib_dec_MBps": mb / tzd,
        "enc_vs_zlib": tze / te,
        "dec_vs_zlib": tzd / td,
        "seconds": {"enc": te, "dec": td, "zlib_enc": tze, "zlib_dec": tzd},
    }


def main() -> None:
    args, levels = parse_args(__doc__, reps=5)
    files = text_files()
    # warm the numba caches so compilation is not timed
    warm = np.frombuffer(b"warm up " * 512, np.uint8)
    for name, lv in [("huffman", None)] + [("lzh", lv) for lv in levels]:
        coder_pair(name, lv, warm)

    huff, lz = [], []
    print(f"{'file':<22}{'huff x H0':>10}{'enc MB/s':>10}{'dec MB/s':>10}")
    for path in files:
        r = probe_huffman(path.name, path.read_bytes(), args.reps)
        huff.append(r)
        print(f"{r['file']:<22}{r['vs_entropy']:>10.4f}{r['enc_MBps']:>10.1f}{r['dec_MBps']:>10.1f}")
    print()
    print(f"{'file':<22}{'lvl':>4}{'size/zlib':>10}{'enc MB/s':>10}{'enc/zlib':>9}{'dec MB/s':>10}{'dec/zlib':>9}")
    for path in files:
        raw = path.read_bytes()
        for lv in levels:
            r = probe_lzh(path.name, raw, lv, args.reps)
            lz.append(r)
            print(
                f"{r['file']:<22}{lv:>4}{r['size_vs_zlib']:>10.4f}{r['enc_MBps']:>10.1f}{r['enc_vs_zlib']:>9.2f}"
                f"{r['dec_MBps']:>10.1f}{r['dec_vs_zlib']:>9.2f}"
            )
    summary = {}
    for lv in levels:
        rows = [r for r in lz if r["level"] == lv]
        secs = {k: sum(r["seconds"][k] for r in rows) for k in ("enc", "dec", "zlib_enc", "zlib_dec")}
        summary[str(lv)] = {
            "size_vs_zlib_total": sum(r["size"] for r in rows) / sum(r["zlib_size"] for r in rows),
            "size_vs_zlib_worst": max(r["size_vs_zlib"] for r in rows),
            "enc_vs_zlib_total": secs["zlib_enc"] / secs["enc"],
            "dec_vs_zlib_total": secs["zlib_dec"] / secs["dec"],
        }
    print()
    for lv in levels:
        s = summary[str(lv)]
        print(
            f"lzh -{lv}: size/zlib total {s['size_vs_zlib_total']:.4f} worst {s['size_vs_zlib_worst']:.4f}, "
            f"compress {s['enc_vs_zlib_total']:.2f}x zlib, decompress {s['dec_vs_zlib_total']:.2f}x zlib"
        )
    write_results("lzh_probe", args.reps, {"huffman": huff, "lzh": lz, "summary": summary})


if __name__ == "__main__":
    main()
