"""`--engine` / `engine=`: writing an older engine on purpose (files an older ziplab decodes).

The strongest check there is: today's ziplab, asked for engine v2 (v3), writes the golden files
that ziplab 0.3 (0.6) wrote with it byte for byte — their payloads, and headers that differ only
where 0.9.1 names the default model ("l4-gutenberg") instead of writing "shipped". Unknown engines, codecs without an engine, and mix
levels without a model are refused in one line.
"""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

import ziplab
from ziplab import container
from ziplab.cli import cli
from ziplab.errors import ParameterError
from ziplab.models.portable import engines

from .test_portable import GOLDEN, ROOT, T1


@pytest.mark.parametrize("name", ["v2-text-nn-shipped-int8x8.zl", "v2-mixed-nn-shipped-int8x8.zl",
                                  "v2-text-nn-t1-int8x8.zl", "e3-text-nn-shipped.zl", "e3-mixed-nn-shipped.zl"])
def test_an_older_engine_writes_the_files_its_version_wrote(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the header holds the model as it was named: a path relative to here
    golden = (GOLDEN / name).read_bytes()
    params = container.read_header(io.BytesIO(golden)).params
    shipped = params["model"] == "shipped"  # the default model then: l4-gutenberg
    model = "l4-gutenberg" if shipped else params["model"]
    data = ziplab.decompress(golden)
    again = ziplab.compress(data, "nn", lanes=params["lanes"], model=model, engine=params["engine"])
    if shipped:
        head, golden_head = io.BytesIO(again), io.BytesIO(golden)
        written, kept = container.read_header(head).params, container.read_header(golden_head).params
        assert {**kept, "model": model} == written
        assert again[head.tell():] == golden[golden_head.tell():]
    else:
        assert again == golden
    newest = ziplab.compress(data, "nn", lanes=params["lanes"], model=model)
    family = params["family"]
    assert container.read_header(io.BytesIO(newest)).params["engine"] == engines(family)[1]


def test_mix_with_engine_v3_writes_the_file_ziplab_0_6_wrote():
    golden = (GOLDEN / "e3-mixed-mix-l2.zl").read_bytes()
    data = ziplab.decompress(golden)
    # level 2 mixed l5 then (l4-gutenberg-large since 0.9.1): the file names it
    assert ziplab.compress(data, "mix", 2, lanes=4, engine="lstm-int8x8-v3", model="l5-gutenberg-large") == golden


def test_mix_writes_the_engine_it_is_asked_for():
    data = b"an engine by name, mixed with context models. " * 40
    blob = ziplab.compress(data, "mix", 1, lanes=4, engine="lstm-int8x8-v2")
    assert container.read_header(io.BytesIO(blob)).params["engine"] == "lstm-int8x8-v2"
    assert ziplab.decompress(blob) == data


@pytest.mark.parametrize("codec, level, options, match", [
    ("nn", None, {"engine": "lstm-int8x8-v9"}, "no engine 'lstm-int8x8-v9'"),
    ("nn", None, {"engine": "lstm-int8x8-v3", "model": str(T1)}, "the transformer model has no engine"),
    ("ctx", 2, {"engine": "lstm-int8x8-v2"}, "takes no option 'engine'"),
    ("mix", 1, {"engine": "lstm-int8x8-v2", "model": "none"}, "codes without a model"),
])
def test_an_engine_that_cannot_be_written_is_refused_in_one_line(codec, level, options, match):
    with pytest.raises(ParameterError, match=match) as info:
        ziplab.compress(b"some text", codec, level, **options)
    assert "\n" not in str(info.value)


def test_the_command_takes_an_engine(tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"the command line names an engine too. " * 30)
    out = CliRunner().invoke(cli, ["compress", "-m", "nn", "--engine", "lstm-int8x8-v2", "--lanes", "4", str(src)])
    assert out.exit_code == 0, out.output
    blob = (tmp_path / "a.txt.zl").read_bytes()
    assert container.read_header(io.BytesIO(blob)).params["engine"] == "lstm-int8x8-v2"
    bad = CliRunner().invoke(cli, ["compress", "-m", "lzh", "--engine", "lstm-int8x8-v2", "-c", str(src)])
    assert bad.exit_code == 2 and "--engine" in bad.output


def test_nn_names_the_default_model_and_old_shipped_files_find_theirs():
    """Since 0.9.1 a header names the default model (l4-gutenberg-large); files that wrote
    "shipped" when the default was l4-gutenberg decode with it, found by the weights' sha256."""
    from ziplab.models.checkpoint import SHIPPED_DEFAULT

    data = b"The default model is named in the header, so a later default cannot misread it. " * 20
    blob = ziplab.compress(data, "nn", lanes=4)
    assert container.read_header(io.BytesIO(blob)).params["model"] == SHIPPED_DEFAULT == "l4-gutenberg-large"
    assert ziplab.decompress(blob) == data
    old = (GOLDEN / "e4-text-nn-shipped.zl").read_bytes()
    assert container.read_header(io.BytesIO(old)).params["model"] == "shipped"
    assert len(ziplab.decompress(old)) == 8000
