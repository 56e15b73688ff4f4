"""The API's OpenAPI document (docs/openapi.yaml) as a checker of routes and answers."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@functools.cache
def spec() -> dict[str, Any]:
    """Return the OpenAPI document."""
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def documented_operations() -> set[tuple[str, str]]:
    """Return (METHOD, path template) of every documented operation."""
    return {(method.upper(), path) for path, item in spec()["paths"].items()
            for method in item if method in METHODS}


def app_operations(app: Any) -> set[tuple[str, str]]:
    """Return (METHOD, path template) of every route of a Flask app (HEAD/OPTIONS aside)."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        template = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((method, template))
    return found


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and len(node) == 1:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Return a validator of `schema`, whose `$ref`s resolve inside the document."""
    return Draft202012Validator({**schema, "components": spec()["components"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_answer(method: str, template: str, status: int, body: Any,
                 headers: Any = None) -> None:
    """Fail unless the answer is documented for the operation and matches its schema.

    A method the path does not document must answer 405 with the error schema.
    """
    item = spec()["paths"].get(template)
    assert item is not None, f"undocumented path {template}"
    operation = item.get(method.lower())
    if operation is None:
        assert status == 405, f"{method} {template} is undocumented but answered {status}"
        response = _resolve(spec()["components"]["responses"]["MethodNotAllowed"])
    else:
        responses = operation["responses"]
        assert str(status) in responses, f"{method} {template} answered undocumented {status}"
        response = _resolve(responses[str(status)])
    schema = response["content"]["application/json"]["schema"]
    errors = sorted(schema_validator(schema).iter_errors(body), key=lambda e: e.path)
    assert not errors, f"{method} {template} {status}: {[e.message for e in errors]} in {body}"
    if headers is not None:
        assert headers.get("content-type", "").startswith("application/json")
