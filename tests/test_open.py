"""ziplab.open as gzip.open and lzma.open are used: every mode, tarfile streaming both ways,
text, appending, file objects, bytes that do not depend on the destination, memory bounded by
one block, one-line errors; and fsspec's compression= through it."""

from __future__ import annotations

import csv
import gc
import io
import tarfile
import tracemalloc

import pytest

import ziplab
from ziplab import container
from ziplab.errors import ParameterError, UnknownCodecError

from .conftest import SAMPLES, zl
from .test_container_bounds import Sink

DATA = SAMPLES["text"] + SAMPLES["random"][:20000] + SAMPLES["all256"]


class OneWaySink(io.RawIOBase):
    """A destination that cannot seek or tell, like a pipe, keeping what it is given."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def _tar_members() -> dict[str, bytes]:
    return {"a.txt": SAMPLES["text"], "dir/b.bin": SAMPLES["random"], "empty": b"", "all256": SAMPLES["all256"]}


def _add(tar: tarfile.TarFile, members: dict[str, bytes]) -> None:
    for name, data in members.items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _read_tar(fileobj) -> dict[str, bytes]:
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def test_tarfile_writes_through_open_as_the_issue_wrote_it(tmp_path):
    path = tmp_path / "a.tar.zl"
    members = _tar_members()
    tar = tarfile.open(fileobj=ziplab.open(path, "wb"), mode="w|")
    _add(tar, members)
    tar.close()
    del tar  # the .zl file object, unreferenced, is closed (and finished) like any file object
    gc.collect()
    r = zl("-d", str(path))
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "a.tar", "rb") as f:
        assert _read_tar(f) == members
    with ziplab.open(path) as f:
        assert _read_tar(f) == members


def test_tarfile_with_statements_and_a_chosen_codec(tmp_path):
    path = tmp_path / "b.tar.zl"
    with ziplab.open(path, "wb", codec="huffman", block_size=5000) as f, tarfile.open(fileobj=f, mode="w|") as tar:
        _add(tar, _tar_members())
    header = container.read_header(io.BytesIO(path.read_bytes()))
    assert (header.codec, header.block_size, header.streamed) == ("huffman", 5000, True)
    with ziplab.open(path, "rb") as f:
        assert _read_tar(f) == _tar_members()


def test_the_bytes_do_not_depend_on_the_destination_or_the_writes():
    ref = ziplab.Compressor("lzh", 6, block_size=4096)
    expected = ref.compress(DATA) + ref.flush()
    seekable, pipe = io.BytesIO(), OneWaySink()
    with ziplab.open(seekable, "wb", level=6, block_size=4096) as f:
        f.write(DATA)
    with ziplab.open(pipe, "wb", level=6, block_size=4096) as f:
        for i in range(0, len(DATA), 777):
            f.write(memoryview(DATA)[i:i + 777])
    assert seekable.getvalue() == bytes(pipe.data) == expected
    assert not seekable.closed and not pipe.closed  # a file object given is left open


def test_text_modes_with_encoding_errors_and_newline(tmp_path):
    path = tmp_path / "t.csv.zl"
    rows = [["naïve", "café"], ["1", "2"], ["€", "\u00e9"]]
    with ziplab.open(path, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    with ziplab.open(path, "rt", encoding="utf-8", newline="") as f:
        assert list(csv.reader(f)) == rows
    with ziplab.open(path, "rt", encoding="ascii", errors="replace") as f:
        assert "\ufffd" in f.read()
    with ziplab.open(path, "wt", newline="\r\n", encoding="utf-8") as f:
        f.write("a\nb\n")
    assert ziplab.decompress(path.read_bytes()) == b"a\r\nb\r\n"


def test_append_adds_a_member_and_exclusive_refuses_an_existing_file(tmp_path):
    path = tmp_path / "log.zl"
    with ziplab.open(path, "xb", codec="store") as f:
        f.write(b"first\n")
    with pytest.raises(FileExistsError):
        ziplab.open(path, "xb")
    with ziplab.open(path, "ab", codec="lzh") as f:
        f.write(b"second\n")
    with ziplab.open(path, "at", encoding="utf-8") as f:
        f.write("third\n")
    assert [h.codec for h, _ in container.members(io.BytesIO(path.read_bytes()))] == ["store", "lzh", "lzh"]
    with ziplab.open(path, "r") as f:
        assert f.read() == b"first\nsecond\nthird\n"
    assert zl("-dc", str(path)).stdout == b"first\nsecond\nthird\n"


def test_round_trips_of_every_sample_through_files(tmp_path, sample):
    path = tmp_path / "s.zl"
    with ziplab.open(path, "w", block_size=3000) as f:
        assert f.write(sample) == len(sample)
    with ziplab.open(path) as f:
        assert f.read() == sample


def test_writing_holds_no_more_than_about_one_block():
    size = 1 << 20
    data = bytes(12 * size)
    tracemalloc.start()
    try:
        with ziplab.open(Sink(), "wb", codec="store", block_size=size) as f:
            f.write(data)  # one call with twelve blocks: coded and written one block at a time
            for i in range(0, len(data), 100_000):
                f.write(memoryview(data)[i:i + 100_000])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * size, peak


def test_file_object_behaviour():
    out = io.BytesIO()
    f = ziplab.open(out, "wb")
    assert f.writable() and not f.readable() and not f.seekable() and f.mode == "wb"
    f.write(b"abc")
    f.flush()  # flushes the destination; a part-filled block waits
    f.close()
    f.close()  # twice is harmless
    with pytest.raises(ValueError):
        f.write(b"x")
    assert ziplab.decompress(out.getvalue()) == b"abc"
    r = ziplab.open(io.BytesIO(out.getvalue()))
    assert r.readable() and not r.writable() and r.read() == b"abc"


def test_bad_arguments_are_clear_errors_and_leave_no_file(tmp_path):
    path = tmp_path / "x.zl"
    with pytest.raises(ParameterError, match="text mode"):
        ziplab.open(path, "wb", encoding="utf-8")
    with pytest.raises(ParameterError, match="are for writing"):
        ziplab.open(path, "rb", codec="lzh")
    with pytest.raises(TypeError, match="path or a binary file object"):
        ziplab.open(42, "rb")
    with pytest.raises(UnknownCodecError):
        ziplab.open(path, "wb", codec="nope")
    with pytest.raises(ParameterError):
        ziplab.open(path, "wb", level=99)
    assert not path.exists()  # settings are checked before the file is created
    path.write_bytes(b"not a zl file")
    with pytest.raises(ziplab.FormatError, match="magic"):
        ziplab.open(path)
    with pytest.raises(ParameterError, match="takes no option 'model'"):
        ziplab.open(io.BytesIO(ziplab.compress(b"abc")), model="shipped").read()


def test_reading_takes_worker_counts():
    with ziplab.open(io.BytesIO(ziplab.compress(SAMPLES["text"], "ctx", 2)), workers=2) as f:
        assert f.read() == SAMPLES["text"]


# ---- fsspec ----------------------------------------------------------------------------------
@pytest.fixture
def fsspec_ziplab():
    fsspec = pytest.importorskip("fsspec")
    from fsspec import compression, utils

    from ziplab import fsspec_compression

    fsspec_compression.register()
    fsspec_compression.register()  # twice is harmless
    yield fsspec
    compression.compr.pop("ziplab", None)  # leave fsspec as other tests found it
    utils.compressions.pop("zl", None)


def test_fsspec_round_trip_local_and_memory(fsspec_ziplab, tmp_path):
    fsspec = fsspec_ziplab
    text = "id,name\n" + "".join(f"{i},row {i} — ünïcode\n" for i in range(2000))
    for url in (f"file://{tmp_path}/data.csv.zl", "memory://ziplab-test/data.csv.zl"):
        with fsspec.open(url, "wt", compression="ziplab", encoding="utf-8") as f:
            f.write(text)
        with fsspec.open(url, "rt", compression="infer", encoding="utf-8") as f:
            assert f.read() == text
        with fsspec.open(url, "rb") as f:  # what fsspec wrote is a .zl file
            assert ziplab.decompress(f.read()) == text.encode()
    assert zl("-dc", str(tmp_path / "data.csv.zl")).stdout == text.encode()
    with fsspec.open("memory://ziplab-test/data.csv.zl", "rb", compression="ziplab") as f:
        assert f.read(2) == b"id"
    fsspec.filesystem("memory").rm("ziplab-test", recursive=True)


def test_fsspec_reads_what_the_cli_wrote(fsspec_ziplab, tmp_path):
    path = tmp_path / "cli.bin"
    path.write_bytes(DATA)
    assert zl("-q", str(path)).returncode == 0
    with fsspec_ziplab.open(f"file://{path}.zl", "rb", compression="infer") as f:
        assert f.read() == DATA


def test_the_python_guide_runs(fsspec_ziplab):
    """docs/python.md's examples are doctests (the README links the guide)."""
    import doctest
    from pathlib import Path

    guide = Path(__file__).resolve().parents[1] / "docs" / "python.md"
    result = doctest.testfile(str(guide), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 20


def test_pandas_reads_and_writes_through_open(tmp_path):
    """pandas' own `compression=` knows only its methods; ziplab's file objects serve it instead."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"word": ["alpha", "béta", "gamma,delta"], "n": [1, 2, 3], "x": [0.5, -1.25, 1e-3]})
    path = tmp_path / "table.csv.zl"
    with ziplab.open(path, "wt", encoding="utf-8", newline="") as f:
        df.to_csv(f, index=False)
    with ziplab.open(path, "rt", encoding="utf-8", newline="") as f:
        back = pd.read_csv(f)
    pd.testing.assert_frame_equal(back, df)
    assert container.read_header(io.BytesIO(path.read_bytes())).codec == "lzh"
    with ziplab.open(path, "rb") as f:  # a binary handle works too
        assert pd.read_csv(f).equals(df)
