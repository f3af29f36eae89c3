"""The hexagon's dependency rule, checked on the import statements of every module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_EVERYWHERE_INSIDE = {
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "adapters",
    "entrypoints",
}
ALLOWED_THIRD_PARTY = {"attrs"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library_attrs_and_ports(path: Path) -> None:
    tops = {_top(n) for n in _imports(path)}
    ours = {"domain", "ports", "__future__"}
    outside = tops - sys.stdlib_module_names - ALLOWED_THIRD_PARTY - ours
    assert outside == set()
    assert tops.isdisjoint(FORBIDDEN_EVERYWHERE_INSIDE)


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: p.name)
def test_only_the_use_cases_module_of_the_domain_imports_ports(path: Path) -> None:
    if path.parent.name == "use_cases":
        return
    assert not any(_top(n) == "ports" for n in _imports(path))


@pytest.mark.parametrize("path", _modules("ports"), ids=lambda p: p.name)
def test_ports_import_only_the_domain_model(path: Path) -> None:
    names = _imports(path)
    tops = {_top(n) for n in names}
    # Other ports are part of the same boundary (a repository port names the value types of
    # another); adapters and use cases are not.
    assert (
        tops - sys.stdlib_module_names - ALLOWED_THIRD_PARTY - {"domain", "ports", "__future__"}
        == set()
    )
    assert "domain.use_cases" not in names


def test_the_rule_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import boto3\nfrom adapters.memory import store\n")
    assert {_top(n) for n in _imports(bad)} == {"boto3", "adapters"}
