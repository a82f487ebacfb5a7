"""Corpora: deterministic disjoint splits, stable fingerprints, and downloads against a local server."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ziplab.cli import cli
from ziplab.corpora import (
    STANDARD,
    Corpus,
    CorpusError,
    Download,
    download_corpus,
    fetch,
    load_corpus,
    split_fingerprint,
    split_ranges,
)
from ziplab.corpora.stdlib import is_heldout, stdlib_files, stdlib_root
from ziplab.errors import ZiplabError

# ---------------------------------------------------------------- stdlib and local corpora


def test_stdlib_splits_are_deterministic_and_disjoint_by_file() -> None:
    root = stdlib_root()
    files = stdlib_files(root)
    assert files == sorted(files) and len(files) > 100
    assert not any(part in ("site-packages", "test", "tests") for f in files for part in f.split("/"))
    held = [f for f in files if is_heldout(f)]
    assert 0.02 < len(held) / len(files) < 0.10
    corpus = load_corpus("stdlib")
    # held-out text is exactly the held-out files in order, so no file contributes to both splits
    assert corpus.heldout() == b"".join((root / f).read_bytes() for f in held)
    assert corpus.train() == b"".join((root / f).read_bytes() for f in files if not is_heldout(f))
    again = load_corpus("stdlib")
    assert again.sha256 == corpus.sha256 == split_fingerprint(corpus.train(), corpus.heldout())


def test_heldout_choice_depends_only_on_the_path() -> None:
    """Pinned values and other processes with other hash seeds agree (a switch to the salted
    built-in hash() would fail this)."""
    import subprocess
    import sys

    paths = [f"pkg/mod{i}.py" for i in range(200)]
    mine = "".join("1" if is_heldout(p) else "0" for p in paths)
    code = ("from ziplab.corpora.stdlib import is_heldout; "
            f"print(''.join('1' if is_heldout(p) else '0' for p in {paths!r}))")
    for seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == mine
    assert [is_heldout(p) for p in ("json/decoder.py", "os.py", "pkg/mod7.py")] == [
        is_heldout("json/decoder.py"), is_heldout("os.py"), is_heldout("pkg/mod7.py")]
    picks = [is_heldout(f"pkg/mod{i}.py") for i in range(4000)]
    assert 0.03 < sum(picks) / len(picks) < 0.07


def test_folder_corpus_splits_by_file(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_bytes(b"train bytes")
    (tmp_path / "test.txt").write_bytes(b"test bytes")
    corpus = load_corpus(tmp_path)
    assert (corpus.train(), corpus.heldout()) == (b"train bytes", b"test bytes")
    (tmp_path / "dev.txt").write_bytes(b"dev bytes")
    assert load_corpus(str(tmp_path)).heldout() == b"dev bytes"  # dev.txt preferred
    assert load_corpus(tmp_path).sha256 == load_corpus(tmp_path).sha256
    (tmp_path / "train.txt").unlink()
    with pytest.raises(CorpusError, match="train.txt"):
        load_corpus(tmp_path)


def test_folder_corpus_reads_an_xz_training_split(tmp_path: Path) -> None:
    import lzma

    (tmp_path / "train.txt.xz").write_bytes(lzma.compress(b"compressed train bytes"))
    (tmp_path / "dev.txt").write_bytes(b"dev bytes")
    corpus = load_corpus(tmp_path)
    assert corpus.train() == b"compressed train bytes" and "train.txt.xz" in corpus.description
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "train.txt").write_bytes(b"compressed train bytes")
    (plain / "dev.txt").write_bytes(b"dev bytes")
    assert load_corpus(plain).sha256 == corpus.sha256  # the same text, whichever way it is stored
    (tmp_path / "train.txt.xz").write_bytes(b"not xz")
    with pytest.raises(CorpusError, match="cannot read"):
        load_corpus(tmp_path).train()


def test_file_corpus_holds_out_the_last_tenth(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_bytes(bytes(range(100)) * 10)
    corpus = load_corpus(path)
    assert len(corpus.heldout()) == 100 and corpus.train() + corpus.heldout() == path.read_bytes()


def test_unknown_corpus_is_a_clear_error() -> None:
    with pytest.raises(CorpusError, match="no corpus named 'nope'"):
        load_corpus("nope")


def test_fingerprint_sees_the_split_point() -> None:
    a = Corpus("a", lambda: b"ab", lambda: b"c")
    b = Corpus("b", lambda: b"a", lambda: b"bc")
    assert a.sha256 != b.sha256


def test_literature_splits() -> None:
    r = split_ranges(100_000_000)
    assert r == {"train": (0, 90_000_000), "valid": (90_000_000, 95_000_000), "test": (95_000_000, 100_000_000)}
    assert split_ranges(1_000_000_000)["test"] == (950_000_000, 1_000_000_000)
    assert set(STANDARD) == {"enwik8", "enwik9", "text8"}


# ---------------------------------------------------------------- downloads

PAYLOAD = np.random.default_rng(7).integers(97, 123, 300_000, dtype=np.uint8).tobytes()


def make_zip(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return buf.getvalue()


ZIP = make_zip("fakewik", PAYLOAD)
SPEC = Download("fakewik", "fakewik.zip", "fakewik", len(PAYLOAD), {"sha256": hashlib.sha256(PAYLOAD).hexdigest()})


class FakeMirror:
    """A 127.0.0.1 server with HTTP Range support that can cut a response short or ignore Range."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/fakewik.zip": ZIP}
        self.ranges: list[str | None] = []
        self.cut_next_at: int | None = None
        self.ignore_range = False
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                mirror.ranges.append(rng)
                start = 0
                if rng and not mirror.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                end = len(body)
                if mirror.cut_next_at is not None:
                    end, mirror.cut_next_at = mirror.cut_next_at, None
                    self.close_connection = True
                self.wfile.write(body[start:end])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    m = FakeMirror()
    yield m
    m.close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZIPLAB_CACHE_DIR", str(tmp_path))
    return tmp_path / "corpora"


def test_fetch_downloads_verifies_and_caches(mirror: FakeMirror, cache: Path) -> None:
    path = fetch(SPEC, mirror=mirror.url, progress=False)
    assert path == cache / "fakewik" and path.read_bytes() == PAYLOAD
    assert not (cache / "fakewik.zip").exists() and not (cache / "fakewik.zip.part").exists()
    assert (cache / "fakewik.verified").is_file()
    assert fetch(SPEC, mirror=mirror.url, progress=False) == path
    assert len(mirror.ranges) == 1  # second fetch served from the cache


def test_download_corpus_uses_the_90_5_5_split(mirror: FakeMirror, cache: Path) -> None:
    corpus = download_corpus(SPEC, mirror=mirror.url, progress=False)
    n = len(PAYLOAD)
    assert corpus.train() == PAYLOAD[: n * 90 // 100]
    assert corpus.heldout() == PAYLOAD[n * 95 // 100 :]
    assert corpus.sha256 == split_fingerprint(corpus.train(), corpus.heldout())
    again = download_corpus(SPEC, mirror=mirror.url, progress=False)
    assert again.sha256 == corpus.sha256  # remembered in the stamp


def test_mirror_from_environment(mirror: FakeMirror, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIPLAB_MIRROR", mirror.url)
    assert fetch(SPEC, progress=False).read_bytes() == PAYLOAD


def test_resumes_a_partial_download(mirror: FakeMirror, cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "fakewik.zip.part").write_bytes(ZIP[:1000])
    assert fetch(SPEC, mirror=mirror.url, progress=False).read_bytes() == PAYLOAD
    assert mirror.ranges == ["bytes=1000-"]


def test_interrupted_download_resumes_on_the_next_run(mirror: FakeMirror, cache: Path) -> None:
    mirror.cut_next_at = len(ZIP) // 3
    with pytest.raises(CorpusError, match="resume"):
        fetch(SPEC, mirror=mirror.url, progress=False)
    assert (cache / "fakewik.zip.part").stat().st_size == len(ZIP) // 3
    assert fetch(SPEC, mirror=mirror.url, progress=False).read_bytes() == PAYLOAD
    assert mirror.ranges == [None, f"bytes={len(ZIP) // 3}-"]


def test_server_without_range_support_restarts_cleanly(mirror: FakeMirror, cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "fakewik.zip.part").write_bytes(ZIP[:1000])
    mirror.ignore_range = True
    assert fetch(SPEC, mirror=mirror.url, progress=False).read_bytes() == PAYLOAD


def test_corrupt_cache_is_detected_and_refetched(mirror: FakeMirror, cache: Path) -> None:
    path = fetch(SPEC, mirror=mirror.url, progress=False)
    data = bytearray(path.read_bytes())
    data[12345] ^= 0xFF
    path.write_bytes(bytes(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a change of mtime voids the stamp
    notes: list[str] = []
    assert fetch(SPEC, mirror=mirror.url, progress=False, note=notes.append).read_bytes() == PAYLOAD
    assert len(notes) == 1 and "sha256" in notes[0] and "fetching it again" in notes[0]


def test_truncated_cache_is_detected(mirror: FakeMirror, cache: Path) -> None:
    path = fetch(SPEC, mirror=mirror.url, progress=False)
    path.write_bytes(PAYLOAD[:100])
    notes: list[str] = []
    assert fetch(SPEC, mirror=mirror.url, progress=False, note=notes.append).read_bytes() == PAYLOAD
    assert "100 bytes" in notes[0]


def test_mirror_serving_the_wrong_file_is_reported(mirror: FakeMirror, cache: Path) -> None:
    mirror.files["/fakewik.zip"] = make_zip("fakewik", PAYLOAD[::-1])
    with pytest.raises(CorpusError, match="sha256 .* expected .*different file"):
        fetch(SPEC, mirror=mirror.url, progress=False)
    mirror.files["/fakewik.zip"] = b"not a zip at all"
    with pytest.raises(CorpusError, match="not a valid zip"):
        fetch(SPEC, mirror=mirror.url, progress=False)
    assert not (cache / "fakewik").exists()


def test_missing_file_on_mirror(mirror: FakeMirror, cache: Path) -> None:
    with pytest.raises(CorpusError, match="HTTP 404"):
        fetch(Download("other", "other.zip", "other", None), mirror=mirror.url, progress=False)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_offline_is_one_clear_line(cache: Path) -> None:
    url = closed_port_url()
    with pytest.raises(ZiplabError) as info:
        fetch(SPEC, mirror=url, progress=False)
    message = str(info.value)
    assert "\n" not in message and f"{url}fakewik.zip" in message
    assert str(cache / "fakewik.zip") in message and "place it at" in message


def test_a_file_placed_by_hand_is_verified_and_used(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "fakewik").write_bytes(PAYLOAD)
    assert fetch(SPEC, mirror=closed_port_url(), progress=False).read_bytes() == PAYLOAD


def test_load_without_download_says_how_to_fetch(cache: Path) -> None:
    with pytest.raises(CorpusError, match="ziplab corpora fetch enwik8"):
        load_corpus("enwik8", download=False)


# ---------------------------------------------------------------- CLI


def test_cli_lists_corpora(cache: Path) -> None:
    result = CliRunner().invoke(cli, ["corpora"])
    assert result.exit_code == 0, result.output
    for name in ("stdlib", "enwik8", "enwik9", "text8", "built in"):
        assert name in result.output


def test_cli_fetch(mirror: FakeMirror, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STANDARD, "enwik8", STANDARD["enwik8"].__class__(SPEC, "fake"))
    result = CliRunner().invoke(cli, ["corpora", "fetch", "enwik8", "--mirror", mirror.url])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and (cache / "fakewik").read_bytes() == PAYLOAD
    listing = CliRunner().invoke(cli, ["corpora"])
    assert "cached" in listing.output


def test_cli_fetch_offline_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ZIPLAB_CACHE_DIR": str(tmp_path), "ZIPLAB_MIRROR": closed_port_url()}
    proc = subprocess.run(
        [sys.executable, "-m", "ziplab", "corpora", "fetch", "text8"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("ziplab: error: cannot download") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
