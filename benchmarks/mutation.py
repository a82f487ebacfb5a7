"""Mutation score of the tests over the modules where a silent bug costs the most: the container,
the predictive (range-coding) module and the portable model step code.

Runs mutmut (configured in pyproject.toml, [tool.mutmut]: which files, which tests) unless told to
only summarise, then counts every mutant's outcome per module. Mutants triaged as equivalent
(they cannot change behaviour; each with its reason) are listed in
benchmarks/mutation_equivalent.json and left out of the score:

    score = (killed + timeout) / (mutants - equivalent)

"no tests" mutants (code no selected test runs) count against the score, as survivors do.

    pip install -e ".[test,mutation]" && python benchmarks/mutation.py [--summarise-only] [--children 2]

Writes benchmarks/results/mutation.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.json"
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault"}


def outcomes(mutants: Path) -> dict[str, dict[str, str]]:
    """module path -> {mutant name: status} from mutmut's per-file .meta records."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        module = str(meta.relative_to(mutants))[: -len(".meta")]
        found[module] = {name: STATUS.get(code, "suspicious" if code is not None else "not checked")
                         for name, code in data.get("exit_code_by_key", {}).items()}
    return found


def summarise(found: dict[str, dict[str, str]], equivalent: dict[str, str]) -> dict:
    modules = {}
    totals: Counter = Counter()
    for module, by_name in found.items():
        counts = Counter(by_name.values())
        eq = sum(1 for name in by_name if name in equivalent)
        counts["equivalent"] = eq
        counts["mutants"] = len(by_name)
        caught = counts["killed"] + counts["timeout"]
        counted = len(by_name) - eq
        modules[module] = {**counts, "score": round(caught / counted, 4) if counted else None,
                           "survivors": sorted(n for n, s in by_name.items()
                                               if s in ("survived", "no tests") and n not in equivalent)}
        totals.update({k: v for k, v in counts.items()})
    caught = totals["killed"] + totals["timeout"]
    counted = totals["mutants"] - totals["equivalent"]
    return {"modules": modules, "total": {**totals, "score": round(caught / counted, 4) if counted else None},
            "target": 0.85}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summarise-only", action="store_true", help="read the last run's results, run nothing")
    ap.add_argument("--children", type=int, default=2)
    args = ap.parse_args()
    started = time.time()
    if not args.summarise_only:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.children)], cwd=ROOT, check=False)
    equivalent = json.loads(EQUIVALENT.read_text()) if EQUIVALENT.is_file() else {}
    summary = summarise(outcomes(ROOT / "mutants"), equivalent)
    from ziplab.hardware import machine_record

    summary.update(command="python benchmarks/mutation.py", tool="mutmut " + _mutmut_version(),
                   machine=machine_record(), seconds=round(time.time() - started, 1))
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{'module':<44}{'mutants':>8}{'killed':>8}{'timeout':>8}{'survived':>9}{'no tests':>9}{'equiv':>6}{'score':>7}")
    for module, m in summary["modules"].items():
        print(f"{module:<44}{m['mutants']:>8}{m.get('killed', 0):>8}{m.get('timeout', 0):>8}{m.get('survived', 0):>9}"
              f"{m.get('no tests', 0):>9}{m['equivalent']:>6}{m['score'] if m['score'] is not None else '-':>7}")
    print(f"total score {summary['total']['score']} (target {summary['target']}); wrote {RESULTS}")


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    main()
