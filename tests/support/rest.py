"""Firestore over REST as an end user: how the app's writes meet the security rules."""

from __future__ import annotations

import base64
import json
import math
import os
import time
from datetime import datetime
from typing import Any

import httpx

from tests.support.emulator import project


def id_token(uid: str, issued_at: int | None = None, **claims: Any) -> str:
    """Return an unsigned ID token for `uid` (the emulators accept it), valid for an hour.

    `issued_at` (seconds since the epoch, default now) makes older, expired tokens;
    `claims` are custom claims (`admin=True`).
    """

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time()) if issued_at is None else issued_at
    return ".".join([part({"alg": "none", "typ": "JWT"}), part({
        "iss": f"https://securetoken.google.com/{project()}", "aud": project(), "iat": now,
        "exp": now + 3600, "auth_time": now, "sub": uid, "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}}, **claims}), ""])


def encode(value: Any) -> dict[str, Any]:
    """Return a Python value as a Firestore REST value."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": value.isoformat().replace("+00:00", "Z")}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: encode(v) for k, v in value.items()}}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [encode(v) for v in value]}}
    raise TypeError(f"cannot encode {value!r}")


class AppClient:
    """Reads and writes as the app does for one signed-in user (or nobody)."""

    def __init__(self, uid: str | None) -> None:
        host = os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8180")
        self.base = f"http://{host}/v1/projects/{project()}/databases/(default)/documents"
        self.headers = {"Authorization": f"Bearer {id_token(uid)}"} if uid else {}
        self.http = httpx.Client(timeout=30)

    def get(self, path: str) -> int:
        return self.http.get(f"{self.base}/{path}", headers=self.headers).status_code

    def create(self, path: str, data: dict[str, Any]) -> int:
        parent, _, doc_id = path.rpartition("/")
        return self.http.post(f"{self.base}/{parent}", params={"documentId": doc_id},
                              json={"fields": {k: encode(v) for k, v in data.items()}},
                              headers=self.headers).status_code

    def update(self, path: str, fields: dict[str, Any]) -> int:
        """Update field paths (dotted) of an existing document, as the SDK's update() does."""
        nested: dict[str, Any] = {}
        for dotted, value in fields.items():
            *parents, leaf = dotted.split(".")
            target = nested
            for name in parents:
                target = target.setdefault(name, {})
            target[leaf] = value
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("updateMask.fieldPaths", dotted) for dotted in fields]
        params.append(("currentDocument.exists", "true"))
        return self.http.patch(f"{self.base}/{path}", params=params,
                               json={"fields": {k: encode(v) for k, v in nested.items()}},
                               headers=self.headers).status_code

    def replace(self, path: str, data: dict[str, Any]) -> int:
        """Overwrite a whole document, as the SDK's set() does."""
        return self.http.patch(f"{self.base}/{path}",
                               json={"fields": {k: encode(v) for k, v in data.items()}},
                               headers=self.headers).status_code

    def delete(self, path: str) -> int:
        return self.http.delete(f"{self.base}/{path}", headers=self.headers).status_code

    def create_all(self, documents: dict[str, dict[str, Any]]) -> int:
        """Create several documents in one atomic commit, as the SDK's batch does."""
        name = self.base.split("/v1/", 1)[1]
        writes = [{"update": {"name": f"{name}/{path}",
                              "fields": {k: encode(v) for k, v in data.items()}},
                   "currentDocument": {"exists": False}} for path, data in documents.items()]
        return self.http.post(f"{self.base}:commit", json={"writes": writes},
                              headers=self.headers).status_code


def load_rules(text: str) -> None:
    """Load security rules into the Firestore emulator."""
    host = os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8180")
    response = httpx.put(f"http://{host}/emulator/v1/projects/{project()}:securityRules",
                         json={"rules": {"files": [{"name": "firestore.rules",
                                                    "content": text}]}}, timeout=30)
    response.raise_for_status()
