"""Mutation score of the tests over the modules where a silent bug costs the most: the container,
the predictive (range-coding) module and the portable model step code.

Two well-kept tools, one per kind of code:
- mutmut (configured in pyproject.toml, [tool.mutmut]) for container.py, frames.py and the predictive module:
  its trampolines run every mutant inside one warm test process, but it skips decorated functions;
- cosmic-ray for the portable model kernels (ziplab/models/portable/), which are almost all numba
  `@njit` functions: it rewrites the source file on disk, so numba compiles the mutant. Each mutant
  runs benchmarks/mutation_kernels_tests.sh (the step and golden-file oracles) in a copy of the
  tree under mutants-kernels/, so the working tree is never touched. Its operators are narrowed to
  mutmut's kind (one replacement per operator: + -> -, * -> /, < -> <=, == -> !=, n -> n±1,
  True <-> False, and <-> or, a loop run zero times, `not` added) and to function bodies, so both
  tools count mutants the same way.

Mutants triaged as equivalent (they cannot change behaviour; each with its reason) are listed in
benchmarks/mutation_equivalent.json and left out of the score:

    score = (killed + timeout) / (mutants - equivalent)

"no tests" mutants (code no selected test runs) count against the score, as survivors do.

    pip install -e ".[test,mutation]" && python benchmarks/mutation.py [--summarise-only] [--children 2]
                                          [--only mutmut|kernels] [--shards 2] [--recheck-survivors]

Both campaigns resume where a killed run stopped; --recheck-survivors runs only the kernel
campaign's survivors again, against tests added since (the kernels must be unchanged). Writes benchmarks/results/mutation.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
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

#: the cosmic-ray campaign: the portable model kernels, run in a copy of the tree
KERNELS = ["ziplab/models/portable/arith.py", "ziplab/models/portable/lstm.py",
           "ziplab/models/portable/transformer.py", "ziplab/models/portable/exactmm.py",
           "ziplab/models/portable/__init__.py"]
KERNEL_DIR = ROOT / "mutants-kernels"
KERNEL_TESTS = "benchmarks/mutation_kernels_tests.sh"
#: cosmic-ray operators kept: one replacement per operator, as mutmut makes
KEEP = re.compile(
    r"core/(ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv|Pow_Mul|LShift_RShift"
    r"|RShift_LShift|BitAnd_BitOr|BitOr_BitAnd|BitXor_BitAnd)"
    r"|ReplaceComparisonOperator_(Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Eq_NotEq|NotEq_Eq|Is_IsNot|IsNot_Is)"
    r"|NumberReplacer|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd"
    r"|ReplaceBreakWithContinue|ReplaceContinueWithBreak|ZeroIterationForLoop|ReplaceUnaryOperator_USub_UAdd"
    r"|ReplaceUnaryOperator_Delete_Not|AddNot)$")


# ---- mutmut: container and predictive module -----------------------------------------------
def mutmut_outcomes(mutants: Path) -> dict[str, dict[str, str]]:
    """module path -> {mutant name: status} from mutmut's per-file .meta records."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        module = str(meta.relative_to(mutants))[: -len(".meta")]
        found[module] = {name: STATUS.get(code, "suspicious" if code is not None else "not checked")
                         for name, code in data.get("exit_code_by_key", {}).items()}
    return found


def run_mutmut(children: int) -> None:
    subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)], cwd=ROOT, check=False)


# ---- cosmic-ray: the portable kernels ------------------------------------------------------
def _function_bodies(path: Path) -> list[tuple[int, int, str]]:
    """(first body line, last line, name) of every function: decorators and module-level tables
    (built once from decimal constants, checked by their own tests) are not step code."""
    tree = ast.parse(path.read_text())
    return [(n.body[0].lineno, n.end_lineno or n.lineno, n.name)
            for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


def _kernel_name(mutation, bodies: dict[str, list]) -> str:
    line = mutation.start_pos[0]
    inside = [name for first, last, name in bodies[str(mutation.module_path)] if first <= line <= last]
    op = mutation.operator_name.split("/", 1)[1]
    return f"{mutation.module_path}::{inside[-1] if inside else '<module>'}:{line} {op} #{mutation.occurrence}"


def _prepare_kernel_session(tree: Path, session: Path, shard: int, shards: int) -> None:
    """Copy the tracked files into `tree`, write the config, create the session, skip the
    mutants outside function bodies, outside the kept operators and outside this shard."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    if tree.exists():
        shutil.rmtree(tree)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tree / name)
    config = tree / "cosmic-ray.toml"
    paths = ", ".join(json.dumps(m) for m in KERNELS)
    config.write_text(f"[cosmic-ray]\nmodule-path = [{paths}]\ntimeout = 180.0\nexcluded-modules = []\n"
                      f"test-command = \"bash {KERNEL_TESTS}\"\n\n[cosmic-ray.distributor]\nname = \"local\"\n")
    subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=tree, check=True)
    bodies = {m: _function_bodies(tree / m) for m in KERNELS}
    with use_db(str(session), WorkDB.Mode.open) as db:
        counted = sorted((item for item in db.work_items
                          if KEEP.match(item.mutations[0].operator_name)
                          and "<module>" not in _kernel_name(item.mutations[0], bodies)),
                         key=lambda item: _kernel_name(item.mutations[0], bodies))
        mine = {item.job_id for i, item in enumerate(counted) if i % shards == shard}
        skip = [item.job_id for item in db.work_items if item.job_id not in mine]
        db.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not counted"))


def _shard_dirs(shards: int) -> list[Path]:
    return [KERNEL_DIR / f"shard{k}" for k in range(shards)]


def run_kernels(shards: int) -> None:
    """One cosmic-ray session per shard, each in its own copy of the tree with its own numba
    cache, run side by side (a killed run resumes: existing sessions are continued)."""
    procs = []
    for k, base in enumerate(_shard_dirs(shards)):
        tree, session, cache = base / "tree", base / "session.sqlite", base / "numba-cache"
        if not session.exists():
            _prepare_kernel_session(tree, session, k, shards)
        cache.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ZIPLAB_MUTATION_CACHE": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
        # the oracles must pass on the unmutated code, or every mutant would count as killed
        subprocess.run(["bash", KERNEL_TESTS], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        procs.append(subprocess.Popen(["cosmic-ray", "exec", str(tree / "cosmic-ray.toml"), str(session)],
                                      cwd=tree, env=env))
    if any(p.wait() for p in procs):
        raise SystemExit("a cosmic-ray session failed")


def recheck_kernel_survivors(shards: int) -> None:
    """After tests were added: give every shard's tree the current tests and scripts and run its
    survivors again. Sound only while the kernels themselves are unchanged (checked: a changed
    kernel means a fresh campaign) and the tests were only added to or tightened."""
    import sqlite3

    for base in _shard_dirs(shards):
        tree = base / "tree"
        for module in KERNELS:
            if (tree / module).read_bytes() != (ROOT / module).read_bytes():
                raise SystemExit(f"{module} changed since the campaign started: delete {KERNEL_DIR} and run afresh")
        for sub in ("tests", "benchmarks"):
            shutil.copytree(ROOT / sub, tree / sub, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "results"))
        with sqlite3.connect(base / "session.sqlite") as db:
            db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    run_kernels(shards)


def kernel_outcomes() -> dict[str, dict[str, str]]:
    """module path -> {mutant name: status} from every shard's cosmic-ray session."""
    found: dict[str, dict[str, str]] = {}
    for base in sorted(KERNEL_DIR.glob("shard*")):
        if (base / "session.sqlite").exists():
            for module, by_name in _session_outcomes(base).items():
                found.setdefault(module, {}).update(by_name)
    return found


def _session_outcomes(base: Path) -> dict[str, dict[str, str]]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    found: dict[str, dict[str, str]] = {}
    bodies = {m: _function_bodies(base / "tree" / m) for m in KERNELS}
    with use_db(str(base / "session.sqlite"), WorkDB.Mode.open) as db:
        results = dict(db.results)
        for item in db.work_items:
            result = results.get(item.job_id)
            if result is not None and result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            mutation = item.mutations[0]
            if result is None:
                status = "not checked"
            elif result.test_outcome == TestOutcome.SURVIVED:
                status = "survived"
            elif result.output and "timeout" in result.output.lower():
                status = "timeout"
            elif result.test_outcome == TestOutcome.KILLED:
                status = "killed"
            else:
                status = "suspicious"  # incompetent: the mutant did not even import
            found.setdefault(str(mutation.module_path), {})[_kernel_name(mutation, bodies)] = status
    return found


# ---- the summary ---------------------------------------------------------------------------
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
                                               if s in ("survived", "no tests", "not checked") and n not in equivalent)}
        totals.update({k: v for k, v in counts.items()})
    caught = totals["killed"] + totals["timeout"]
    counted = totals["mutants"] - totals["equivalent"]
    return {"modules": modules, "total": {**totals, "score": round(caught / counted, 4) if counted else None},
            "target": 0.85}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summarise-only", action="store_true", help="read the last runs' results, run nothing")
    ap.add_argument("--children", type=int, default=2, help="mutmut's parallel test processes")
    ap.add_argument("--only", choices=("mutmut", "kernels"), help="run one campaign (both are summarised)")
    ap.add_argument("--shards", type=int, default=2, help="cosmic-ray sessions run side by side")
    ap.add_argument("--recheck-survivors", action="store_true",
                    help="run the kernel campaign's survivors again against the current tests")
    args = ap.parse_args()
    started = time.time()
    if not args.summarise_only:
        if args.only in (None, "mutmut"):
            run_mutmut(args.children)
        if args.only in (None, "kernels"):
            (recheck_kernel_survivors if args.recheck_survivors else run_kernels)(args.shards)
    equivalent = json.loads(EQUIVALENT.read_text()) if EQUIVALENT.is_file() else {}
    found = {**mutmut_outcomes(ROOT / "mutants"), **kernel_outcomes()}
    summary = summarise(found, equivalent)
    from ziplab.provenance import record as provenance_record

    summary.update(command="python benchmarks/mutation.py",
                   tools={"mutmut": _version("mutmut"), "cosmic-ray": _version("cosmic-ray")},
                   provenance=provenance_record(), seconds=round(time.time() - started, 1))
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{'module':<44}{'mutants':>8}{'killed':>8}{'timeout':>8}{'survived':>9}{'no tests':>9}{'equiv':>6}{'score':>7}")
    for module, m in summary["modules"].items():
        print(f"{module:<44}{m['mutants']:>8}{m.get('killed', 0):>8}{m.get('timeout', 0):>8}{m.get('survived', 0):>9}"
              f"{m.get('no tests', 0):>9}{m['equivalent']:>6}{m['score'] if m['score'] is not None else '-':>7}")
    print(f"total score {summary['total']['score']} (target {summary['target']}); wrote {RESULTS}")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
