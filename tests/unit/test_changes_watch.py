"""ChangesWatch delivers the same changes as Google's Watch, without re-reading the result.

The listen stream is replaced by a script of ListenResponse messages (what the
server sends); each is fed to a ChangesWatch and to Google's own Watch, the
oracle, and their deliveries are compared.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.types import (
    Document,
    ListenResponse,
    TargetChange,
    Value,
)
from google.cloud.firestore_v1.types import DocumentChange as WireChange
from google.cloud.firestore_v1.watch import WATCH_TARGET_ID, Watch
from google.protobuf.timestamp_pb2 import Timestamp

from cogmora_backend.firestore.watch import ChangesWatch

PROJECT = "demo-watch"
PREFIX = f"projects/{PROJECT}/databases/(default)/documents/"


class _Scripted:
    """A watch fed by hand: no stream is opened."""

    def _init_stream(self) -> None:
        self._rpc = None
        self._consumer = None


class ScriptedChanges(_Scripted, ChangesWatch):
    pass


class ScriptedGoogle(_Scripted, Watch):  # type: ignore[misc]
    pass


Delivery = list[tuple[str, str, dict[str, Any]]]


def watches() -> tuple[Any, Any, list[Delivery], list[Delivery]]:
    client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
    query = client.collection_group("openPositions").where(
        filter=firestore.FieldFilter("details.status", "in", ["open", "closing"]))
    ours: list[Delivery] = []
    google: list[Delivery] = []

    def recorder(into: list[Delivery]) -> Any:
        def record(_documents: Any, changes: Any, _read_time: Any) -> None:
            into.append(sorted((c.type.name, c.document.reference.path, c.document.to_dict())
                               for c in changes))
        return record

    return (ScriptedChanges.for_query(query, recorder(ours), DocumentSnapshot),
            ScriptedGoogle.for_query(query, recorder(google), DocumentSnapshot), ours, google)


def stamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=7)


def target(kind: TargetChange.TargetChangeType, read_time: int | None = None) -> ListenResponse:
    change = TargetChange(target_change_type=kind,
                          target_ids=[] if read_time else [WATCH_TARGET_ID])
    if read_time:
        change.read_time = stamp(read_time)
    return ListenResponse(target_change=change)


def document(path: str, version: int, status: str = "open") -> ListenResponse:
    doc = Document(name=PREFIX + path, create_time=stamp(1), update_time=stamp(version),
                   fields={"details": Value(map_value={"fields": {
                       "status": Value(string_value=status)}}),
                       "version": Value(integer_value=version)})
    return ListenResponse(document_change=WireChange(document=doc,
                                                     target_ids=[WATCH_TARGET_ID]))


def removed(path: str) -> ListenResponse:
    return ListenResponse(document_change=WireChange(
        document=Document(name=PREFIX + path, update_time=stamp(99)),
        removed_target_ids=[WATCH_TARGET_ID]))


def snapshot_at(read_time: int) -> list[ListenResponse]:
    return [target(TargetChange.TargetChangeType.CURRENT),
            target(TargetChange.TargetChangeType.NO_CHANGE, read_time)]


RESET = TargetChange.TargetChangeType.RESET
A, B, C, D = (f"users/u{n}/openPositions/p{n}" for n in range(4))
SCRIPT = [
    [target(TargetChange.TargetChangeType.ADD), document(A, 10), document(B, 10),
     document(D, 10), *snapshot_at(11)],
    # A reset (the emulator sends one at every commit): A again unchanged, B edited,
    # C new, D not sent again (gone).
    [target(RESET), document(A, 10), document(B, 12, "closing"), document(C, 12),
     *snapshot_at(13)],
    # Nothing changed at all: a reset that sends everything again unchanged.
    [target(RESET), document(A, 10), document(B, 12, "closing"), document(C, 12),
     *snapshot_at(14)],
    # Plain changes, then a removal from the result.
    [document(A, 15, "closing"), removed(C), *snapshot_at(16)],
]


def play(watch: Any, responses: list[ListenResponse]) -> None:
    for response in responses:
        watch.on_snapshot(response)


@pytest.mark.parametrize("steps", range(1, len(SCRIPT) + 1))
def test_every_snapshot_delivers_what_googles_watch_delivers(steps: int) -> None:
    ours, google, delivered, expected = watches()
    for responses in SCRIPT[:steps]:
        play(ours, responses)
        play(google, responses)
    assert delivered == expected
    assert set(ours.doc_map) == set(google.doc_map)


def test_the_deliveries_of_the_script() -> None:
    ours, _google, delivered, _expected = watches()
    for responses in SCRIPT:
        play(ours, responses)
    # The reset that changed nothing delivers nothing.
    first, reset, plain = delivered
    assert [(kind, path) for kind, path, _ in first] == [("ADDED", A), ("ADDED", B), ("ADDED", D)]
    assert reset == [("ADDED", C, {"details": {"status": "open"}, "version": 12}),
                     ("MODIFIED", B, {"details": {"status": "closing"}, "version": 12}),
                     ("REMOVED", D, {"details": {"status": "open"}, "version": 10})]
    assert plain == [("MODIFIED", A, {"details": {"status": "closing"}, "version": 15}),
                     ("REMOVED", C, {"details": {"status": "open"}, "version": 12})]


def test_a_document_sent_again_unchanged_is_not_decoded_again() -> None:
    ours, _google, _delivered, _expected = watches()
    play(ours, SCRIPT[0])
    held = ours.doc_map[PREFIX + A]
    play(ours, SCRIPT[1])
    assert ours.doc_map[PREFIX + A] is held
    assert ours.doc_map[PREFIX + B] is not held


def test_a_whole_collection_is_listened_to_as_its_query() -> None:
    client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
    watch = ScriptedChanges.of(client.collection("users/u1/latencyFloor"), lambda *_: None)
    assert watch._targets["query"].parent.endswith("/documents/users/u1")
