"""A query listener that delivers changes only, without re-sorting or re-decoding its result.

The worker keeps its own index of every open level and reads only the changes
a listener delivers, never the ordered result. Google's `Watch` (the client's
`on_snapshot`) builds that ordered result anyway, at every snapshot: it sorts
every document of the result with a Python comparator and copies its document
map once per changed document, so one change to a result of n documents costs
O(n log n). And a listen stream sends the whole result again whenever the
server resets the target (a reconnect, an existence-filter mismatch; the local
emulator does it on every commit), each document decoded again though unchanged.

`ChangesWatch` keeps Google's protocol handling (targets, resume tokens,
resets, retries) and changes two steps:
- a document sent again with the update time already held is not decoded: it
  only cancels the reset's removal of it;
- a snapshot applies its changes to the document map in place and hands the
  callback the changes alone (its first argument, the ordered result, is empty).

Measured in bench/listener_cost.py (docs/BENCHMARKS.md).
"""

# mypy: disable-error-code="no-untyped-call"
# (Google's watch module is untyped.)
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.collection import CollectionReference
from google.cloud.firestore_v1.watch import (
    WATCH_TARGET_ID,
    ChangeType,
    DocumentChange,
    Watch,
)

Version = tuple[int, int]


class _Held:
    """The held documents as `Watch` reads its ordered tree: only to list them on a reset."""

    def __init__(self, documents: dict[str, Any]) -> None:
        self._documents = documents

    def keys(self) -> list[Any]:
        return list(self._documents.values())

    def __len__(self) -> int:
        return len(self._documents)


def _version(snapshot: Any) -> Version:
    stamp = snapshot.update_time.timestamp_pb()
    return stamp.seconds, stamp.nanos


class ChangesWatch(Watch):
    """`Watch` delivering changes only: `callback([], changes, read_time)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: The update time of each held document (its full name → seconds, nanos).
        self._versions: dict[str, Version] = {}
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]  # Watch's attribute, read only to list on a reset
    def doc_tree(self) -> _Held:
        """The held documents: the document map is the only state kept."""
        return _Held(self.doc_map)

    @doc_tree.setter
    def doc_tree(self, _tree: Any) -> None:
        """`Watch` sets its own tree; the document map stands for it."""

    @classmethod
    def of(cls, query: Any, callback: Callable[[list[Any], list[Any], Any], None]) -> ChangesWatch:
        """Listen to `query` (a google.cloud.firestore query, or a whole collection)."""
        if isinstance(query, CollectionReference):
            query = query._query()
        return cls.for_query(query, callback, DocumentSnapshot)  # type: ignore[no-any-return]

    def unsubscribe(self) -> None:
        """Stop listening (Google's, typed)."""
        super().unsubscribe()

    def on_snapshot(self, proto: Any) -> None:
        if proto is not None and not self._closing.locked():
            pb = proto._pb
            if pb.WhichOneof("response_type") == "document_change":
                change = pb.document_change
                document = change.document
                held = self.doc_map.get(document.name)
                if (held is not None and WATCH_TARGET_ID in change.target_ids
                        and self._versions.get(document.name) == (
                            document.update_time.seconds, document.update_time.nanos)):
                    self.change_map[document.name] = held  # sent again, unchanged
                    return
        super().on_snapshot(proto)

    def push(self, read_time: Any, next_resume_token: Any) -> None:
        deletes, adds, updates = self._extract_changes(self.doc_map, self.change_map, read_time)
        applied: list[Any] = []
        for name in deletes:
            self._versions.pop(name, None)
            applied.append(DocumentChange(ChangeType.REMOVED, self.doc_map.pop(name), -1, -1))
        for snapshot in adds:
            name = snapshot.reference._document_path
            self.doc_map[name], self._versions[name] = snapshot, _version(snapshot)
            applied.append(DocumentChange(ChangeType.ADDED, snapshot, -1, -1))
        for snapshot in updates:
            name = snapshot.reference._document_path
            held = self.doc_map[name]
            if held is snapshot or held.update_time == snapshot.update_time:
                continue
            self.doc_map[name], self._versions[name] = snapshot, _version(snapshot)
            applied.append(DocumentChange(ChangeType.MODIFIED, snapshot, -1, -1))
        if not self.has_pushed or applied:
            self._snapshot_callback([], applied, read_time)
            self.has_pushed = True
        self.change_map.clear()
        self.resume_token = next_resume_token
