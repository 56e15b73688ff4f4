"""Accounts in the Auth emulator, as the Admin SDK sees them (disabled, revoked)."""

from __future__ import annotations

import os
import time

import httpx

from tests.support.emulator import project


def _accounts_url(action: str = "") -> str:
    host = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    return (f"http://{host}/identitytoolkit.googleapis.com/v1/projects/{project()}/"
            f"accounts{action}")


def _post(action: str, body: dict[str, object]) -> None:
    # The emulator takes "Bearer owner" as the admin's credentials.
    response = httpx.post(_accounts_url(action), json=body,
                          headers={"Authorization": "Bearer owner"}, timeout=30)
    response.raise_for_status()


def register_user(uid: str) -> None:
    """Create the account `uid` in the Auth emulator (tokens of unknown users are refused)."""
    _post("", {"localId": uid})


def disable_user(uid: str) -> None:
    """Disable the account `uid`, as an admin does in the console."""
    _post(":update", {"localId": uid, "disableUser": True})


def revoke_tokens(uid: str) -> None:
    """Revoke every token of `uid` issued before now (Admin SDK revoke_refresh_tokens)."""
    _post(":update", {"localId": uid, "validSince": str(int(time.time()))})
