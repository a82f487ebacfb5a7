"""The house's rules, read from the source with `ast` (nothing is imported or run):

- no import circle among ziplab's modules, counting imports inside functions too (a lazy import
  still ties two modules together);
- no private name (one starting with "_") taken from another module, by `from M import _x` or by
  `M._x`, anywhere in ziplab/ or benchmarks/ (M: a ziplab module, a test helper or a sibling
  benchmark script);
- nothing in ziplab/ changes process-wide numeric or threading state as a module is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ziplab"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(*folders: str) -> dict[str, Path]:
    """Module name -> file, for every .py under the folders (benchmarks/ scripts keyed by path)."""
    out = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[_module_name(path)] = path
    return out


MODULES = _sources("ziplab")
SCRIPTS = _sources("benchmarks")
#: what a benchmark may import besides ziplab: the test helpers and its sibling scripts (by bare name)
OTHERS = {**_sources("tests"), **{name.rpartition(".")[2]: path for name, path in SCRIPTS.items()}}


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(name: str) -> str | None:
    """The ziplab module `name` (a dotted module path) is, or the nearest enclosing one."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported ziplab module, name taken from it or None, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ziplab" and (owner := _owner(alias.name)):
                    found.append((owner, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_package, node)
            if target.split(".")[0] != "ziplab":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from . import container`: the submodule itself
                    found.append((sub, None, node.lineno))
                elif (owner := _owner(target)) is not None:
                    found.append((owner, alias.name, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _, _ in _imports(module, path):
            # a package's __init__ is run by importing any module inside it; only edges between
            # distinct modules count (a package importing its own submodules is not a circle)
            if target != module and not module.startswith(target + "."):
                graph[module].add(target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_ziplab():
    circles = _circles(_graph())
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def _private_uses(module: str, path: Path) -> list[str]:
    """`from M import _x` and `M._x` (M another ziplab module, bound by an import) in one file."""
    tree = ast.parse(path.read_text(), str(path))
    bad = []
    bound: dict[str, str] = {}  # local name -> ziplab module it is bound to
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_package, node)
            if target.split(".")[0] != "ziplab" and target not in OTHERS:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES or sub in OTHERS:
                    bound[alias.asname or alias.name] = sub
                elif (alias.name.startswith("_") and not alias.name.startswith("__")
                      and (_owner(target) or target) != module):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {target} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES or alias.name in OTHERS:
                    bound[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in bound and bound[node.value.id] != module):
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {bound[node.value.id]}.{node.attr}")
    return bad


def test_no_private_name_taken_across_modules():
    bad = [b for m, p in {**MODULES, **SCRIPTS}.items() for b in _private_uses(m, p)]
    assert not bad, "private names used from another module:\n" + "\n".join(bad)


#: calls that change process-wide state: allowed inside functions (scoped there), never at import
GLOBAL_SETTERS = {"set_num_threads", "set_num_interop_threads", "set_float32_matmul_precision", "set_flush_denormal",
                  "seterr", "setcontext", "set_default_dtype", "manual_seed", "use_deterministic_algorithms",
                  "set_printoptions", "filterwarnings", "simplefilter", "setrecursionlimit"}


def _module_level(tree: ast.Module):
    """Statements run when the module is imported (not inside a def or class body's methods)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def test_no_global_state_changed_on_import():
    bad = []
    for path in MODULES.values():
        for node in _module_level(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GLOBAL_SETTERS:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.attr}")
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Call)
                                                      and getattr(t.value.func, "attr", "") == "getcontext"
                                                      for t in node.targets)):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: decimal context changed")
    assert not bad, "process-wide state set at import:\n" + "\n".join(bad)


def test_importing_every_module_leaves_process_state_alone():
    """The same, at run time: import every ziplab module in a fresh process and compare the decimal
    context, numpy's error handling, torch's threads and matmul precision before and after."""
    import subprocess
    import sys

    import pytest

    pytest.importorskip("torch")
    code = """
import decimal, importlib, json, pkgutil
import numpy as np
import torch

def state():
    c = decimal.getcontext()
    return {"decimal": [c.prec, str(c.rounding), c.Emax, c.Emin], "numpy": np.geterr(),
            "threads": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
            "matmul": torch.get_float32_matmul_precision(), "dtype": str(torch.get_default_dtype())}

before = state()
import ziplab
skipped = []
for mod in pkgutil.walk_packages(ziplab.__path__, "ziplab."):
    if mod.name.endswith("__main__"):  # runs the command line
        continue
    try:
        importlib.import_module(mod.name)
    except ImportError as exc:  # an optional dependency this machine lacks
        skipped.append(f"{mod.name}: {exc}")
print(json.dumps({"before": before, "after": state(), "skipped": skipped}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, errors="replace", cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"] == seen["after"]


def test_the_command_can_tune_its_heap():
    """`ziplab` pins glibc's mmap threshold (memory O(block) on long streams) and its trim
    threshold (no heap churn per neural step) for its own process."""
    import subprocess
    import sys

    from ziplab.hardware import tune_heap

    script = ("import ziplab, ziplab.cli, ziplab.hardware as h; import os; "
              "print(h.tune_heap() if os.uname().sysname == 'Linux' else True)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-1000:]
    assert callable(tune_heap)


def test_the_command_gives_numpys_blas_one_thread_unless_told_otherwise():
    """`ziplab` sets OPENBLAS_NUM_THREADS=1 before numpy loads (idle BLAS threads spun on the
    workers' cores), and a value the user set is kept; importing the library sets nothing."""
    import subprocess
    import sys

    script = ("import os, sys, ziplab, ziplab.cli; before = os.environ.get('OPENBLAS_NUM_THREADS'); "
              "sys.argv = ['ziplab', 'codecs']; "
              "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()): code = ziplab.cli.run(['codecs'])\n"
              "print(before, os.environ.get('OPENBLAS_NUM_THREADS'), code)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.split() == ["None", "1", "0"], out.stderr[-1000:]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**env, "OPENBLAS_NUM_THREADS": "3"})
    assert out.stdout.split() == ["3", "3", "0"], out.stderr[-1000:]


def test_coding_leaves_the_callers_torch_settings_as_they_were():
    """A coding run sets torch's threads and matmul precision for its engine and restores both."""
    import torch

    import ziplab

    data = b"It was the best of times, it was the worst of times. " * 40
    before = torch.get_num_threads(), torch.get_float32_matmul_precision()
    try:
        torch.set_num_threads(2)
        torch.set_float32_matmul_precision("high")
        for codec in ("nn", "mix"):
            blob = ziplab.compress(data, codec, workers=1)
            assert ziplab.decompress(blob, workers=1) == data
            assert (torch.get_num_threads(), torch.get_float32_matmul_precision()) == (2, "high")
    finally:
        torch.set_num_threads(before[0])
        torch.set_float32_matmul_precision(before[1])
