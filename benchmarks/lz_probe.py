"""Quick probe of the lz77 and lzss codecs against zlib, measured in the same run.

The machine is shared, so absolute MB/s are noisy: every timing is best-of-N with the codec
and zlib runs interleaved, and speeds are also reported as ratios to zlib at the same level
and to zlib -6 (the target for the default level).

    python benchmarks/lz_probe.py [--reps 3] [--levels 1,6,9]

Prints a table and writes benchmarks/results/lz_probe.json.
"""

from __future__ import annotations

import zlib

import numpy as np
from probe_common import coder_pair, interleaved_best, parse_args, text_files, write_results


CODECS = ("lz77", "lzss")


def probe_file(name: str, raw: bytes, levels: list[int], reps: int) -> list[dict]:
    """One row per (codec, level); zlib at the same level and at -6 timed alongside."""
    data = np.frombuffer(raw, np.uint8)
    zsize = {lv: len(zlib.compress(raw, lv)) for lv in set(levels) | {6}}
    rows = []
    for codec_name in CODECS:
        for lv in levels:
            encode, decode, payload = coder_pair(codec_name, lv, data)
            z = zlib.compress(raw, lv)
            secs = interleaved_best(
                {
                    "enc": lambda: encode(data),
                    "zlib_enc": lambda: zlib.compress(raw, lv),
                    "zlib6_enc": lambda: zlib.compress(raw, 6),
                    "dec": lambda: decode(payload, len(raw)),
                    "zlib_dec": lambda: zlib.decompress(z),
                },
                reps,
            )
            te, tz, tz6, td, tzd = (secs[k] for k in ("enc", "zlib_enc", "zlib6_enc", "dec", "zlib_dec"))
            mb = len(raw) / 1e6
            rows.append(
                {
                    "file": name,
                    "codec": codec_name,
                    "level": lv,
                    "bytes": len(raw),
                    "size": len(payload),
                    "ratio": len(payload) / len(raw),
                    "zlib_size": zsize[lv],
                    "zlib_ratio": zsize[lv] / len(raw),
                    "size_vs_zlib": len(payload) / zsize[lv],
                    "enc_MBps": mb / te,
                    "dec_MBps": mb / td,
                    "zlib_enc_MBps": mb / tz,
                    "zlib6_enc_MBps": mb / tz6,
                    "zlib_dec_MBps": mb / tzd,
                    "enc_vs_zlib": tz / te,
                    "enc_vs_zlib6": tz6 / te,
                    "dec_vs_zlib": tzd / td,
                    "seconds": {"enc": te, "dec": td, "zlib_enc": tz, "zlib6_enc": tz6, "zlib_dec": tzd},
                }
            )
    return rows


def summarize(rows: list[dict], levels: list[int]) -> dict:
    """Totals over all files: summed bytes and summed best times, per codec and level."""
    out: dict = {}
    for codec_name in CODECS:
        for lv in levels:
            sel = [r for r in rows if r["codec"] == codec_name and r["level"] == lv]
            secs = {k: sum(r["seconds"][k] for r in sel) for k in sel[0]["seconds"]}
            total = sum(r["bytes"] for r in sel)
            out[f"{codec_name}-{lv}"] = {
                "ratio": sum(r["size"] for r in sel) / total,
                "zlib_ratio": sum(r["zlib_size"] for r in sel) / total,
                "enc_MBps": total / 1e6 / secs["enc"],
                "dec_MBps": total / 1e6 / secs["dec"],
                "zlib_enc_MBps": total / 1e6 / secs["zlib_enc"],
                "zlib6_enc_MBps": total / 1e6 / secs["zlib6_enc"],
                "enc_vs_zlib": secs["zlib_enc"] / secs["enc"],
                "enc_vs_zlib6": secs["zlib6_enc"] / secs["enc"],
                "dec_vs_zlib": secs["zlib_dec"] / secs["dec"],
            }
    return out


def main() -> None:
    args, levels = parse_args(__doc__, reps=3)
    files = text_files()
    warm = np.frombuffer(b"warm up the numba caches " * 256, np.uint8)
    for codec_name in CODECS:  # compile or load every kernel before timing
        coder_pair(codec_name, 6, warm)

    rows: list[dict] = []
    head = f"{'file':<22}{'codec':>6}{'lvl':>4}{'ratio':>8}{'zlib':>8}{'enc MB/s':>10}{'/zlib':>7}{'/zlib6':>8}{'dec MB/s':>10}{'/zlib':>7}"
    print(head)
    for path in files:
        for r in probe_file(path.name, path.read_bytes(), levels, args.reps):
            rows.append(r)
            print(
                f"{r['file']:<22}{r['codec']:>6}{r['level']:>4}{r['ratio']:>8.4f}{r['zlib_ratio']:>8.4f}"
                f"{r['enc_MBps']:>10.1f}{r['enc_vs_zlib']:>7.2f}{r['enc_vs_zlib6']:>8.2f}"
                f"{r['dec_MBps']:>10.1f}{r['dec_vs_zlib']:>7.2f}"
            )
    summary = summarize(rows, levels)
    print("\ntotals over all files (ratio = compressed/original; speeds vs zlib timed beside them):")
    for key, s in summary.items():
        print(
            f"{key:<8} ratio {s['ratio']:.4f} (zlib same level {s['zlib_ratio']:.4f}); "
            f"compress {s['enc_MBps']:.1f} MB/s = {s['enc_vs_zlib']:.2f}x zlib same level, {s['enc_vs_zlib6']:.2f}x zlib -6; "
            f"decompress {s['dec_MBps']:.0f} MB/s = {s['dec_vs_zlib']:.2f}x zlib"
        )
    write_results("lz_probe", args.reps, {"levels": levels, "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
