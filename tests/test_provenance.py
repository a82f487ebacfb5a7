"""The provenance record: its keys, its version, no heavy import to make it, and every committed
results file carrying one (live, or backfilled from the file and git history)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ziplab
from ziplab.provenance import REQUIRED, record, same_origin, stamp

ROOT = Path(__file__).resolve().parents[1]
RESULT_GLOBS = ("benchmarks/results/*.json", "docs/results/**/*.json")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def test_the_record_holds_the_required_keys_and_ziplabs_own_version():
    prov = record()
    assert set(REQUIRED) <= set(prov)
    assert prov["ziplab_version"] == ziplab.__version__
    assert {"numpy", "numba", "torch", "constriction"} <= set(prov["versions"])


def test_the_commit_is_the_checkouts_own():
    head = _git("rev-parse", "HEAD")
    if head is None or not (ROOT / ".git").exists():
        pytest.skip("not run from a git checkout")
    assert record()["git_commit"] == head


def test_recording_imports_neither_torch_nor_numpy():
    code = ("import sys, ziplab.provenance as p; p.record(); "
            "print(sorted(m for m in ('torch', 'numpy', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stamp_keeps_a_writer_of_another_origin():
    first = {**record(), "ziplab_version": "0.0.1"}
    data = stamp({}, first)
    stamp(data, {**first, "recorded_at": "later"})  # the same origin: replaced, nothing kept
    assert "earlier_provenance" not in data and data["provenance"]["recorded_at"] == "later"
    now = record()
    stamp(data, now)
    stamp(data, now)
    assert data["provenance"] == now and len(data["earlier_provenance"]) == 1
    assert same_origin(data["earlier_provenance"][0], first)


def _results_files() -> list[Path]:
    return sorted({p for pattern in RESULT_GLOBS for p in ROOT.glob(pattern)})


def test_there_are_results_files():
    assert len(_results_files()) >= 15


@pytest.mark.parametrize("path", _results_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_results_file_carries_a_provenance_record(path: Path):
    data = json.loads(path.read_text())
    prov = data.get("provenance")
    assert isinstance(prov, dict), f"{path.relative_to(ROOT)}: no provenance record " \
                                   "(python benchmarks/backfill_provenance.py adds one to an old file)"
    assert set(REQUIRED) <= set(prov), set(REQUIRED) - set(prov)
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", prov["ziplab_version"])
    derived = prov.get("backfilled")
    if derived is None:  # a live record
        assert prov["cpu"] and prov["isa_flags"] is not None and prov["versions"]
        return
    # a backfilled one: the version as it stood in the commit the file was committed in
    init = _git("show", f"{derived['committed_in']}:ziplab/__init__.py")
    if init is None:
        pytest.skip("no git history to check the backfilled version against")
    assert f'__version__ = "{prov["ziplab_version"]}"' in init
