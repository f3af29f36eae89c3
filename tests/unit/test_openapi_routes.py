"""The routes the Lambda resolver serves are exactly the operations of api/openapi.yaml."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

OPENAPI = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def documented_operations() -> set[tuple[str, str]]:
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_the_resolver_serves_every_documented_operation_and_nothing_else() -> None:
    http_api = importlib.import_module("entrypoints.lambda.http_api")
    pages = importlib.import_module("entrypoints.lambda.patient_pages")
    served = http_api.served_routes()
    # The patients' pages are another function's (API Gateway sends `/p/...` there).
    documented = {op for op in documented_operations() if not op[1].startswith("/p/")}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert documented_operations() - documented == pages.ROUTES


def test_the_openapi_document_has_operations_to_compare() -> None:
    assert len(documented_operations()) >= 10
