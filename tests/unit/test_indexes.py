"""Every query the code makes has its index in firestore.indexes.json.

The emulator does not enforce indexes, production does: a missing one fails
only after deploy. Queries are declared once in `cogmora_backend.queries`;
this checks each against the index file, and checks that no code builds a
query anywhere else.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cogmora_backend import queries
from cogmora_backend.queries import QuerySpec

ROOT = Path(__file__).resolve().parents[2]
INDEXES = json.loads((ROOT / "firestore.indexes.json").read_text())
QUERY_METHODS = {"where", "order_by", "collection_group", "start_at", "end_at"}


def has_index(spec: QuerySpec) -> bool:
    """Return whether the index file serves `spec`."""
    ordered = spec.range_field or spec.order_field
    wanted_range = [ordered] if ordered else []
    wanted_order = "DESCENDING" if spec.descending else "ASCENDING"
    scope = "COLLECTION_GROUP" if spec.group else "COLLECTION"
    if len(spec.equality) + len(wanted_range) == 1:
        field = (list(spec.equality) + wanted_range)[0]
        return any(
            override["collectionGroup"] == spec.collection_group
            and override["fieldPath"] == field
            and any(i.get("queryScope") == scope and i.get("order") == wanted_order
                    for i in override["indexes"])
            for override in INDEXES.get("fieldOverrides", [])
        )
    for index in INDEXES["indexes"]:
        if index["collectionGroup"] != spec.collection_group:
            continue
        if index["queryScope"] != scope:
            continue
        fields = [f["fieldPath"] for f in index["fields"]]
        orders = [f.get("order") for f in index["fields"]][len(spec.equality):]
        if sorted(fields[: len(spec.equality)]) == sorted(spec.equality) and (
            fields[len(spec.equality) :] == wanted_range
        ) and all(order == wanted_order for order in orders):
            return True
    return False


@pytest.mark.parametrize("spec", queries.ALL, ids=lambda s: s.name)
def test_every_declared_query_has_its_index(spec: QuerySpec) -> None:
    assert has_index(spec), f"no index in firestore.indexes.json serves {spec}"


def test_the_seed_designs_indexes_are_present() -> None:
    assert has_index(QuerySpec("seed", "openPositions", ("symbol", "details.status")))
    assert has_index(QuerySpec("seed", "tradeTriggers", ("symbol", "details.status")))


def test_a_query_without_an_index_is_caught() -> None:
    assert not has_index(QuerySpec("descending without its index", "openPositions", (),
                                   order_field="details.status", descending=True))
    assert not has_index(QuerySpec("no override", "tradeHistory", (), group=False,
                                   order_field="closedAt", descending=True))
    assert not has_index(QuerySpec("missing", "openPositions", ("symbol",), "openedAt"))
    assert not has_index(QuerySpec("wrong scope", "users", ("automation.ai.enabled",),
                                   "automation.ai.nextRun", group=True))


def source_files() -> list[Path]:
    files = [*(ROOT / "functions").rglob("*.py"), *(ROOT / "worker").rglob("*.py")]
    return [f for f in files if "venv" not in f.parts and f.name != "queries.py"]


def test_no_code_builds_a_query_outside_the_registry() -> None:
    offenders = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERY_METHODS
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}(")
    assert offenders == [], "build queries from cogmora_backend.queries specs"
