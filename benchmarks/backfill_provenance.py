"""Give every committed results file written before the provenance record existed one, honestly.

Rerunning the benchmarks and grids behind them would take days, so nothing is re-measured: each
file without a "provenance" record gets one built from two sources, and marked as built so
(`"backfilled": {...}`, which says what came from where):

- what the file recorded itself: its older "machine" / "environment" record (CPU, ISA flags,
  library versions, torch threads), fuzz.json's "cpu", the newest section or check of a file
  written piece by piece, preregistered.json's own commit per prediction;
- git history: the commit that last changed the file, and `ziplab.__version__` as it stood in that
  commit's ziplab/__init__.py (pyproject.toml where that has none). That is the version of the code
  the results were committed with; the run itself used that code or the code just before it.

What neither source tells is None (never guessed): the commit a benchmark ran at, whether its tree
was dirty, the machine behind a fit.json. A version the file recorded itself that disagrees with
the source is kept as `recorded_ziplab_version` (those files read the installed distribution's
metadata, which said 0.1.0 long after ziplab/__init__.py said 0.3.0).

Files that already carry a record are left alone, so the script may be run again at any time
(after a merge brings in a results file written by older code, say):

    python benchmarks/backfill_provenance.py          # write
    python benchmarks/backfill_provenance.py --check  # list what would change, write nothing
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ziplab.hardware import FLAGS
from ziplab.provenance import LIBRARIES

#: the committed results files: every JSON under these folders
RESULT_GLOBS = ("benchmarks/results/*.json", "docs/results/**/*.json")
SCRIPT = "benchmarks/backfill_provenance.py"


def results_files(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in RESULT_GLOBS for p in root.glob(pattern)})


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def last_commit(path: Path) -> tuple[str, str]:
    """(sha, committer date) of the commit that last changed `path`."""
    out = git("log", "-1", "--format=%H %cI", "--", str(path.relative_to(ROOT)))
    if not out:
        raise SystemExit(f"{path} is not committed: run the benchmark again instead of backfilling it")
    sha, date = out.split()
    return sha, date


def version_at(commit: str) -> tuple[str, str]:
    """(ziplab.__version__ at `commit`, where it was read)."""
    init = git("show", f"{commit}:ziplab/__init__.py")
    found = re.search(r'^__version__ = "([^"]+)"', init, re.MULTILINE)
    if found:
        return found.group(1), f"__version__ in ziplab/__init__.py at {commit[:12]}"
    found = re.search(r'^version = "([^"]+)"', git("show", f"{commit}:pyproject.toml"), re.MULTILINE)
    if found:
        return found.group(1), f"version in pyproject.toml at {commit[:12]}"
    raise SystemExit(f"no ziplab version found at {commit}")


def legacy_record(data: dict) -> tuple[dict, str | None]:
    """The file's own machine record, normalised to the old machine_record/environment keys, and
    where in the file it was found (None: nowhere)."""
    for key in ("machine", "environment"):
        if isinstance(data.get(key), dict):
            return data[key], key
    if isinstance(data.get("cpu"), dict):  # fuzz.json: {"model", "cpus", "flags": every flag}
        cpu = data["cpu"]
        return {"cpu": cpu.get("model"), "cpu_count": cpu.get("cpus"),
                "isa_flags": [f for f in FLAGS if f in set(cpu.get("flags", []))]}, "cpu"
    sections = [(k, v) for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("machine"), dict)]
    if sections:  # neural.json: one machine per section; the newest section's
        name, section = max(sections, key=lambda kv: kv[1].get("when", ""))
        return section["machine"], f"{name}.machine (the newest section by its 'when')"
    checks = [c for c in data.get("checks", []) if isinstance(c.get("environment"), dict)]
    if checks:  # rate_check.json: one environment per check; the last one
        return checks[-1]["environment"], f"checks[{len(data['checks']) - 1}].environment (the last check)"
    if isinstance(data.get("machine"), str):  # the earliest probes recorded platform.machine() alone
        return {"arch": data["machine"]}, "machine (the architecture alone)"
    return {}, None


def backfilled_record(path: Path, data: dict) -> dict[str, Any]:
    commit, date = last_commit(path)
    version, version_from = version_at(commit)
    old, found_in = legacy_record(data)
    derived = {"by": SCRIPT, "committed_in": commit, "committed_at": date,
               "ziplab_version_from": version_from + " (the code these results were committed with; parts written "
                                      "into the file earlier may have run earlier code)",
               "machine_from": f"the file's own '{found_in}'" if found_in else "nothing (the file recorded no machine)"}
    record: dict[str, Any] = {
        "ziplab_version": version, "git_commit": None, "git_dirty": None,
        "python": old.get("python"), "platform": old.get("platform"), "cpu": old.get("cpu"), "arch": old.get("arch"),
        "cpu_count": old.get("cpu_count"), "isa_flags": old.get("isa_flags"),
        "versions": {name: old.get(name) for name in LIBRARIES},
        "threads": {"torch": old["torch_threads"]} if "torch_threads" in old else {},
    }
    for key in ("torch_capability", "native_bf16"):
        if key in old:
            record[key] = old[key]
    env = {k: v for k, v in old.items() if k.isupper()}
    if env:
        record["env"] = env
    if isinstance(data.get("torch"), str) and record["versions"]["torch"] is None:  # model_speed.json
        record["versions"]["torch"] = data["torch"]
        derived["versions_from"] = "the file's own 'torch'"
    commits = [p.get("commit") for p in data.get("predictions", []) if p.get("commit")]
    if commits:  # preregistered.json: each prediction recorded the HEAD it was made at
        record["git_commit"] = commits[-1]
        derived["git_commit_from"] = "the last prediction's own 'commit'"
    when = data.get("when") or data.get("started")
    if when:
        record["recorded_at"] = when
    if old.get("ziplab") and old["ziplab"] != version:
        record["recorded_ziplab_version"] = old["ziplab"]
        derived["note"] = (f"the file's own record says ziplab {old['ziplab']}: the installed distribution's "
                           f"metadata, not ziplab.__version__ ({version} in the code it was committed with)")
    record["backfilled"] = derived
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="list the files that lack a record; write nothing")
    args = ap.parse_args()
    missing = []
    for path in results_files():
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "provenance" in data:
            continue
        missing.append(path)
        record = backfilled_record(path, data)
        print(f"{path.relative_to(ROOT)}: ziplab {record['ziplab_version']} "
              f"({record['backfilled']['committed_in'][:12]}), machine from {record['backfilled']['machine_from']}")
        if not args.check:  # the file's own layout kept (indent, final newline), so the diff is the record alone
            text = path.read_text()
            indent = len(text[2:]) - len(text[2:].lstrip(" ")) if text.startswith("{\n") else None
            path.write_text(json.dumps({"provenance": record, **data}, indent=indent)
                            + ("\n" if text.endswith("\n") else ""))
    print(f"{len(missing)} file(s) {'lack' if args.check else 'given'} a provenance record")
    if args.check and missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
