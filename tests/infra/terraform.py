"""Reading `infra/terraform` with python-hcl2 (the same parser `citas provision` uses)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

from adapters.aws.resources import normalize_hcl, parse_tf_file

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"

_REFERENCE = re.compile(r"\$\{([^{}]+)\}")


def tf_files() -> list[Path]:
    return sorted(TF_DIR.glob("*.tf"))


@cache
def tree() -> dict[str, Any]:
    """Every block of every file: resource/data by type and name, locals, variables, outputs."""
    kinds = ("resource", "data", "locals", "variable", "output")
    merged: dict[str, Any] = {kind: {} for kind in kinds}
    for path in tf_files():
        parsed = parse_tf_file(path)
        for kind in ("resource", "data"):
            for group in parsed.get(kind, []):
                for type_name, by_name in group.items():
                    for name, body in by_name.items():
                        merged[kind].setdefault(type_name, {})[name] = body
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for kind in ("variable", "output"):
            for group in parsed.get(kind, []):
                merged[kind].update(group)
    return merged


def resources(type_name: str) -> dict[str, dict[str, Any]]:
    return dict(tree()["resource"].get(type_name, {}))


def data_sources(type_name: str) -> dict[str, dict[str, Any]]:
    return dict(tree()["data"].get(type_name, {}))


def local(name: str) -> Any:
    return tree()["locals"][name]


def variable_default(name: str) -> Any:
    return tree()["variable"][name].get("default")


def blocks(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A nested block as a list (python-hcl2 gives a list of one dict per block)."""
    found = body.get(key, [])
    return [found] if isinstance(found, dict) else list(found)


def block(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    found = blocks(body, key)
    assert len(found) == 1, f"expected one {key!r} block, got {found!r}"
    return found[0]


def text(value: Any) -> str:
    """Any parsed value as text, to search it for references."""
    return value if isinstance(value, str) else json.dumps(value)


def references(value: Any, prefix: str) -> set[str]:
    """Names `x` of every `<prefix>.x` referenced in `value` (e.g. prefix `aws_sqs_queue`)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(prefix)}\.([A-Za-z_][A-Za-z0-9_]*)")
    return set(pattern.findall(text(value)))


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and _REFERENCE.search(value) is not None


def render(template: str, bindings: Mapping[str, str] | None = None) -> str:
    """Evaluate a string template of `${var.x}`, `${local.x}`, `${lower(name)}`, `${name}`.

    Enough for the name templates of the .tf files (variables at their defaults); anything
    else is an error, so a template this cannot read fails loudly instead of passing.
    """
    bindings = dict(bindings or {})

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if expression.startswith("var."):
            value = variable_default(expression[4:])
        elif expression.startswith("local."):
            value = local(expression[6:])
        elif (call := re.fullmatch(r"lower\((\w+)\)", expression)) is not None:
            value = bindings[call.group(1)].lower()
        elif expression in bindings:
            value = bindings[expression]
        else:
            raise ValueError(f"cannot evaluate ${{{expression}}} in {template!r}")
        if not isinstance(value, str):
            raise ValueError(f"${{{expression}}} is not a string: {value!r}")
        return render(value, bindings)

    return _REFERENCE.sub(one, template)


def for_expression_value(expression: str) -> tuple[str, str]:
    """`${{for k in ... : k => "<template>"}}` -> (`k`, `<template>`)."""
    match = re.fullmatch(r'\$\{\{for (\w+) in [^:]+:\s*\w+\s*=>\s*"(.*)"\}\}', expression.strip())
    if match is None:
        raise ValueError(f"not a simple for expression: {expression!r}")
    return match.group(1), match.group(2)


def for_object(expression: str) -> tuple[str, str, dict[str, Any]]:
    """`${{for v in ... : "<key>" => {<object>}}}` -> (`v` or `k, v`, key, parsed object).

    python-hcl2 leaves a for expression as one string; its object is parsed here as HCL, so
    its attributes read like those of a literal object (`v` itself reads `${v}`).
    """
    match = re.fullmatch(
        r'\$\{\{for (\w+(?:, \w+)?) in [^:]+:\s*"([^"]*)"\s*=>\s*(\{.*\})\}\}',
        expression.strip(),
        re.S,
    )
    if match is None:
        raise ValueError(f"not a for expression of objects: {expression!r}")
    variable, key, body = match.groups()
    parsed = normalize_hcl(_bare_names_as_expressions(hcl2.loads(f"value = {body}\n")))["value"]
    assert isinstance(parsed, dict), parsed
    return variable, key, parsed


def call_object(expression: str, function: str) -> dict[str, Any]:
    """`${<function>({<object>})}` -> the parsed object, its attributes read as in for_object."""
    match = re.fullmatch(rf"\$\{{{re.escape(function)}\((\{{.*\}})\)\}}", expression.strip(), re.S)
    if match is None:
        raise ValueError(f"not a call of {function} on an object: {expression!r}")
    parsed = normalize_hcl(_bare_names_as_expressions(hcl2.loads(f"value = {match.group(1)}\n")))
    value = parsed["value"]
    assert isinstance(value, dict), value
    return value


def _bare_names_as_expressions(value: Any) -> Any:
    """python-hcl2 gives a lone name (`country`) unquoted, a string literal quoted: make the
    name `${country}`, as in a literal object, so it cannot pass for the string."""
    if isinstance(value, dict):
        return {k: _bare_names_as_expressions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bare_names_as_expressions(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", value):
        return "${" + value + "}"
    return value


_SOURCE_DOCUMENT = re.compile(
    r"^\$\{data\.aws_iam_policy_document\.(\w+)(?:\[([^\]]+)\])?\.json\}$"
)


def source_documents(document: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(name, index) of each `source_policy_documents` entry, e.g. ("function_basics", '"x"')."""
    found = []
    for entry in document.get("source_policy_documents", []):
        match = _SOURCE_DOCUMENT.match(entry)
        assert match is not None, f"unreadable source_policy_documents entry {entry!r}"
        found.append((match.group(1), match.group(2)))
    return found


def dynamic_blocks(body: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    """(for_each, content) of every `dynamic "<key>"` block of `body`."""
    found = []
    for group in blocks(body, "dynamic"):
        for name, dynamic in group.items():
            if name == key:
                found.append((dynamic["for_each"], block(dynamic, "content")))
    return found


def policy_statements(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The statements of a policy document, those of its `source_policy_documents` first.

    A `dynamic "statement"` block counts as its statement (with its `for_each` under
    `dynamic_for_each`): present whenever what it grants is configured.
    """
    for name, _index in source_documents(document):
        yield from policy_statements(data_sources("aws_iam_policy_document")[name])
    yield from blocks(document, "statement")
    for for_each, content in dynamic_blocks(document, "statement"):
        yield {**content, "dynamic_for_each": for_each}


def lambda_keys(value: Any) -> set[str]:
    """Keys `k` of every `aws_lambda_function.this["k"]` referenced in `value`."""
    return set(re.findall(r'aws_lambda_function\.this\["(\w+)"\]', text(value)))
