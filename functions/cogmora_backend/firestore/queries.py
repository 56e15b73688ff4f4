"""Turn the declarative query specs (`cogmora_backend.queries`) into Firestore queries."""

from __future__ import annotations

from typing import Any

from google.cloud.firestore_v1 import Query
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.base_query import FieldFilter

from cogmora_backend.queries import QuerySpec
from cogmora_backend.store import Snapshot


def build(client: Any, spec: QuerySpec, equals: tuple[Any, ...], bound: Any = None, *,
          limit: int | None = None, after: Snapshot | None = None,
          parent: str | None = None) -> Any:
    """Return the query of `spec` with `equals` for the equality fields and the range to `bound`.

    A list among `equals` matches any of its values (`in`). The query starts
    after the document `after` (placed by its values, as a cursor from a
    snapshot: the range field, then the document's path) and returns at most
    `limit` documents.
    """
    spec.check(equals)
    if spec.group:
        query = client.collection_group(spec.collection_group)
    elif parent is not None:
        query = client.document(parent).collection(spec.collection_group)
    else:
        query = client.collection(spec.collection_group)
    for field, value in zip(spec.equality, equals, strict=True):
        operator = "in" if isinstance(value, list) else "=="
        query = query.where(filter=FieldFilter(field, operator, value))
    if spec.range_field is not None:
        query = query.where(filter=FieldFilter(spec.range_field, spec.range_operator, bound))
        query = query.order_by(spec.range_field)
    if after is not None:
        query = query.start_after(cursor(client, after))
    if limit is not None:
        query = query.limit(limit)
    return query


def page(client: Any, spec: QuerySpec, collection: str, limit: int, after: Any = None, *,
         equals: tuple[Any, ...] = (), since: Any = None, before: Any = None) -> Any:
    """Return at most `limit` documents of `collection` (a path) after snapshot `after`.

    Filtered by `equals` on the spec's equality fields and to [`since`,
    `before`) on its order field (either bound optional); ordered by the
    order field, then by document id in the same direction, so that equal
    values still page in a stable order.
    """
    field = spec.check_page(collection)
    spec.check(equals)
    direction = Query.DESCENDING if spec.descending else Query.ASCENDING
    query: Any = client.collection(collection)
    for name, value in zip(spec.equality, equals, strict=True):
        query = query.where(filter=FieldFilter(name, "==", value))
    if since is not None:
        query = query.where(filter=FieldFilter(field, ">=", since))
    if before is not None:
        query = query.where(filter=FieldFilter(field, "<", before))
    query = query.order_by(field, direction=direction)
    query = query.order_by("__name__", direction=direction)
    if after is not None:
        query = query.start_after(after)
    return query.limit(limit)


def listing(client: Any, collection: str, after_id: str | None = None) -> Any:
    """Return the documents of `collection` by id, those after the id `after_id` when given."""
    query = client.collection(collection)
    if after_id is None:
        return query
    return query.order_by("__name__").start_after(
        {"__name__": client.document(f"{collection}/{after_id}")})


def cursor(client: Any, after: Snapshot) -> DocumentSnapshot[Any]:
    """Return a Google snapshot of `after` as read, to start a query after it."""
    return DocumentSnapshot(client.document(after.path), after.data, True, None, None, None)
