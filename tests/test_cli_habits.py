"""gzip/zstd habits through real processes: -d, -c, -t, -l, -1..-9, -k, --rm, -T, -o -, stdin,
concatenated streams, --json everywhere, bench --plot, and the option values that are errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ziplab

from .conftest import CLI_DATA as DATA
from .conftest import zl


def test_plain_file_argument_compresses_and_dash_d_decompresses(src, tmp_path):
    assert zl("-q", str(src)).returncode == 0
    src.unlink()
    r = zl("-d", str(src) + ".zl")
    assert r.returncode == 0, r.stderr
    assert src.read_bytes() == DATA and Path(str(src) + ".zl").exists()  # inputs are kept, like zstd


def test_level_shorthand_is_the_level(src, tmp_path):
    a, b = tmp_path / "a.zl", tmp_path / "b.zl"
    assert zl("-9", "-o", str(a), str(src)).returncode == 0
    assert zl("compress", "--level", "9", "-o", str(b), str(src)).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    assert zl("-l", str(a)).stdout.decode().count("level        9") == 1


def test_dash_c_concatenates_and_every_member_decodes_and_lists(tmp_path):
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_bytes(DATA)
    two.write_bytes(b"second file " * 100)
    r = zl("-c", str(one), str(two))
    assert r.returncode == 0, r.stderr
    both = tmp_path / "both.zl"
    both.write_bytes(r.stdout)
    back = zl("-dc", str(both))
    assert back.returncode == 0 and back.stdout == DATA + b"second file " * 100
    listed = json.loads(zl("info", "--json", str(both)).stdout)
    assert [m["member"] for m in listed] == [0, 1] and listed[0]["original_bytes"] == len(DATA)
    assert sum(m["compressed_bytes"] for m in listed) == both.stat().st_size
    mixed = tmp_path / "mixed.zl"  # members with different codecs, made separately and concatenated
    mixed.write_bytes(zl("-c", "-m", "huffman", str(one)).stdout + zl("-c", "-m", "lzss", str(two)).stdout)
    assert zl("-dc", str(mixed)).stdout == DATA + b"second file " * 100


def test_test_flag_verifies_and_writes_nothing(src, tmp_path):
    assert zl("-q", str(src)).returncode == 0
    src.unlink()
    r = zl("-t", str(src) + ".zl")
    assert r.returncode == 0 and b"OK" in r.stderr and not src.exists()
    blob = bytearray(Path(str(src) + ".zl").read_bytes())
    blob[len(blob) // 2] ^= 1
    bad = tmp_path / "bad.zl"
    bad.write_bytes(bytes(blob))
    r = zl("-t", str(bad))
    assert r.returncode == 1 and b"bad.zl" in r.stderr and b"Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zl", "data.txt.zl"]


def test_stdin_when_no_file_and_dash_o_dash_is_stdout(src):
    r = zl(stdin=DATA)
    assert r.returncode == 0 and r.stdout[:4] == b"ZLab"
    assert zl("-d", stdin=r.stdout).stdout == DATA
    r = zl("compress", "-o", "-", str(src))
    assert r.returncode == 0 and zl("-dc", "-", stdin=r.stdout).stdout == DATA


def test_zl_inputs_are_skipped_unless_forced(src):
    assert zl("-q", str(src)).returncode == 0
    r = zl("-q", str(src) + ".zl")
    assert r.returncode == 1 and b"already has the .zl suffix" in r.stderr
    assert not Path(str(src) + ".zl.zl").exists()
    assert zl("-q", "-f", str(src) + ".zl").returncode == 0 and Path(str(src) + ".zl.zl").exists()


def test_rm_deletes_inputs_only_after_a_verified_write(src):
    assert zl("-q", "--rm", str(src)).returncode == 0
    assert not src.exists()
    assert zl("-d", "--rm", str(src) + ".zl").returncode == 0
    assert src.read_bytes() == DATA and not Path(str(src) + ".zl").exists()


def test_keep_and_threads_are_accepted(src):
    r = zl("-k", "-T", "2", "-m", "ctx", "-q", str(src))
    assert r.returncode == 0, r.stderr
    assert src.exists() and zl("-dc", "-T", "2", str(src) + ".zl").stdout == DATA


@pytest.mark.parametrize("args", [
    ("compress", "--lanes", "0", "-m", "ctx", "F"),
    ("compress", "--block-size", "0", "F"),
    ("compress", "-m", "huffman", "-l", "3", "F"),
    ("compress", "-T", "0", "-m", "nn", "F"),
    ("compress", "--lanes", "8", "F"),  # lanes mean nothing to lzh
])
def test_meaningless_option_values_are_errors(args, tmp_path):
    (tmp_path / "F").write_bytes(DATA)
    r = zl(*args, cwd=tmp_path)
    assert r.returncode in (1, 2) and b"Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F"]


def test_old_codec_flag_gets_a_message_saying_what_to_type(src):
    r = zl("compress", "-c", "lzh", str(src))
    assert r.returncode == 2 and b"-m lzh" in r.stderr


def test_json_outputs_parse_with_stable_keys(src, tmp_path):
    assert zl("-q", str(src)).returncode == 0
    info = json.loads(zl("info", "--json", str(src) + ".zl").stdout)
    assert {"file", "member", "format_version", "codec", "params", "original_bytes", "compressed_bytes",
            "block_size", "blocks", "crc32", "ratio", "bpb", "decoding_memory_bytes"} == set(info[0])
    codecs = json.loads(zl("codecs", "--json").stdout)
    assert {c["name"] for c in codecs} >= {"store", "huffman", "lzh", "ctx", "nn"}
    corpora = json.loads(zl("corpora", "--json").stdout)
    assert corpora[0]["name"] == "stdlib" and corpora[0]["status"] == "built in"
    bench = json.loads(zl("bench", "--codecs", "huffman,lzh:1", "--no-peers", "--once", "--json", "-",
                          str(src)).stdout)
    measured = bench["measurements"]
    assert [b["codec"] for b in measured] == ["huffman", "lzh-1"] and all(b["round_trip"] for b in measured)
    assert bench["provenance"]["ziplab_version"] == ziplab.__version__


def test_bench_plot_writes_a_png(src, tmp_path):
    png = tmp_path / "bench.png"
    r = zl("bench", "--codecs", "huffman,lzh:6", "--once", "--plot", str(png), str(src))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_front():
    from ziplab.bench import pareto

    # (speed, bpb): 0 fast and big, 1 slow and small, 2 dominated by 0, 3 in between
    assert pareto([(100, 4.0), (1, 2.0), (50, 4.5), (10, 3.0)]) == [0, 3, 1]
