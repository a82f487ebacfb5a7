"""The CLI as people use it: real processes, exit codes, files left (or not) behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import CLI_DATA as DATA
from .conftest import zl


def test_compress_keeps_input_and_round_trips(src, tmp_path):
    r = zl("compress", "-q", str(src))
    assert r.returncode == 0, r.stderr
    assert src.read_bytes() == DATA
    src.rename(tmp_path / "orig.txt")
    r = zl("decompress", str(src) + ".zl")
    assert r.returncode == 0, r.stderr
    assert src.read_bytes() == DATA


def test_refuses_to_overwrite_without_force(src):
    assert zl("compress", "-q", str(src)).returncode == 0
    before = Path(str(src) + ".zl").read_bytes()
    r = zl("compress", "-q", "-m", "huffman", str(src))
    assert r.returncode == 1 and b"--force" in r.stderr
    assert Path(str(src) + ".zl").read_bytes() == before
    r = zl("compress", "-q", "-f", "-m", "huffman", str(src))
    assert r.returncode == 0
    assert Path(str(src) + ".zl").read_bytes() != before


def test_decompress_refuses_to_overwrite_the_original(src):
    assert zl("compress", "-q", str(src)).returncode == 0
    r = zl("decompress", str(src) + ".zl")
    assert r.returncode == 1 and b"already exists" in r.stderr
    assert zl("decompress", "-f", str(src) + ".zl").returncode == 0
    assert src.read_bytes() == DATA


def test_stdin_to_stdout_and_back():
    r = zl("compress", "-m", "lzss", "-", stdin=DATA)
    assert r.returncode == 0, r.stderr
    back = zl("decompress", "-", stdin=r.stdout)
    assert back.returncode == 0 and back.stdout == DATA


def test_corrupt_input_leaves_no_output_and_one_line_error(src, tmp_path):
    assert zl("compress", "-q", str(src)).returncode == 0
    blob = bytearray(Path(str(src) + ".zl").read_bytes())
    blob[len(blob) // 2] ^= 0x40
    bad = tmp_path / "bad.txt.zl"
    bad.write_bytes(bytes(blob))
    r = zl("decompress", str(bad))
    assert r.returncode == 1
    assert r.stderr.decode().count("\n") == 1 and b"Traceback" not in r.stderr
    assert not (tmp_path / "bad.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt.zl", "data.txt", "data.txt.zl"]


@pytest.mark.parametrize("args", [
    ("compress", "/no/such/file"),
    ("decompress", "/no/such/file.zl"),
    ("compress", "-m", "nope", "x"),
    ("compress", "-m", "lzh", "-l", "42", "x"),
    ("info", "/no/such/file.zl"),
])
def test_bad_requests_are_one_line_errors(args, tmp_path):
    (tmp_path / "x").write_bytes(b"abc")
    r = zl(*args, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert b"Traceback" not in r.stderr and r.stderr.decode().strip().count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_usage_errors_exit_2():
    assert zl("compress", "--no-such-flag").returncode == 2
    assert zl("--frobnicate").returncode == 2
    r = zl("compres", "x")  # a typo'd command is not taken for a file name
    assert r.returncode == 2 and b"ziplab compress" in r.stderr
    r = zl("frobnicate")  # gzip-style: a file that does not exist
    assert r.returncode == 1 and b"frobnicate" in r.stderr


def test_info_shows_codec_and_sizes(src):
    assert zl("compress", "-q", "-m", "huffman", str(src)).returncode == 0
    r = zl("info", str(src) + ".zl")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "huffman" in out and str(len(DATA)) in out and "bpb" in out


def test_output_option_and_directory_input(src, tmp_path):
    out = tmp_path / "custom.bin"
    assert zl("compress", "-q", "-o", str(out), str(src)).returncode == 0
    r = zl("decompress", "-o", str(tmp_path / "back.txt"), str(out))
    assert r.returncode == 0 and (tmp_path / "back.txt").read_bytes() == DATA
    r = zl("compress", str(tmp_path))
    assert r.returncode == 1 and b"directory" in r.stderr


def test_codecs_lists_every_codec():
    r = zl("codecs")
    assert r.returncode == 0
    for name in ("huffman", "lz77", "lzss", "lzh"):
        assert name in r.stdout.decode()


def test_empty_file(tmp_path):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    assert zl("compress", "-q", str(p)).returncode == 0
    p.unlink()
    assert zl("decompress", "-q", str(p) + ".zl").returncode == 0
    assert p.read_bytes() == b""


@pytest.mark.skipif(os.name != "posix", reason="posix permissions")
def test_unwritable_folder_is_a_clear_error(src, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        r = zl("compress", "-o", str(locked / "x.zl"), str(src))
        assert r.returncode == 1 and b"Traceback" not in r.stderr
    finally:
        locked.chmod(0o700)
