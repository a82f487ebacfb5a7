"""The examples in docstrings run (the package's `>>>` lines are part of its documentation)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ziplab


def _modules_with_examples() -> list[str]:
    names = ["ziplab"]
    for info in pkgutil.walk_packages(ziplab.__path__, "ziplab."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py") and ">>>" in open(spec.origin).read():
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and (result.attempted > 0 or name != "ziplab")
