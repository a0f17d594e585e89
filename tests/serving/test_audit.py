"""The audit log through the real gateway: admin calls, key changes and policy denials land in sqlite (the
default) and in PostgreSQL; with `audit.required`, a failing audit log refuses the change and nothing changes."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from serving.access.audit import AuditEntry, PostgresAuditLog, SqliteAuditLog
from serving.access.sqlite_store import SqliteKeyStore
from tests.serving.conftest import save_two_model_router

MASTER = "sk-master-audit-test"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"
GatewayFactory = Callable[..., AbstractContextManager[str]]


def call(url: str, key: str, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"})


def exercise(url: str) -> str:
    """Create, use against policy, list, revoke; a denied admin call. Returns the key id."""
    created = call(url, MASTER, "POST", "/admin/keys", {"role": "user", "allowed_models": ["alpha"]}).json()
    body = {"model": "beta", "messages": [{"role": "user", "content": "hi"}]}
    assert call(url, created["key"], "POST", "/v1/chat/completions", body).status_code == 403
    assert call(url, created["key"], "GET", "/admin/router").status_code == 403
    assert call(url, "wrong", "GET", "/admin/keys").status_code == 401
    assert call(url, MASTER, "GET", "/admin/keys").status_code == 200
    assert call(url, MASTER, "GET", "/admin/router").status_code == 200
    assert call(url, MASTER, "DELETE", f"/admin/keys/{created['id']}").status_code == 200
    key_id: str = created["id"]
    return key_id


def check_entries(entries: list[AuditEntry], key_id: str) -> None:
    seen = {(e.actor, e.action, e.target, e.outcome) for e in entries}
    expected = {
        ("master", "POST /admin/keys", "POST /admin/keys", "allowed"),
        ("master", "key.create", key_id, "allowed"),
        (key_id, "policy.model", "beta", "denied"),
        (key_id, "GET /admin/router", "GET /admin/router", "denied"),
        ("anonymous", "GET /admin/keys", "GET /admin/keys", "denied"),
        ("master", "GET /admin/keys", "GET /admin/keys", "allowed"),
        ("master", "GET /admin/router", "GET /admin/router", "allowed"),
        ("master", "key.revoke", key_id, "allowed"),
    }
    assert expected <= seen, expected - seen
    create = next(e for e in entries if e.action == "key.create")
    assert create.details["allowed_models"] == ["alpha"] and "key" not in create.details


def test_every_admin_action_and_denial_is_audited_in_sqlite(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    with start_gateway(master_key=MASTER) as url:
        key_id = exercise(url)
    entries = asyncio.run(SqliteAuditLog(tmp_path / "audit.sqlite", "routeiq_audit").entries())
    check_entries(entries, key_id)
    with closing(sqlite3.connect(tmp_path / "audit.sqlite")) as conn:
        rows = conn.execute("SELECT actor, action, outcome FROM routeiq_audit").fetchall()
    assert len(rows) == len(entries) and ("master", "key.revoke", "allowed") in rows


@pytest.fixture
def postgres_table() -> Iterator[str]:
    """A table name unique to this run, dropped afterwards."""
    table = f"audit_{uuid.uuid4().hex[:12]}"
    yield table
    with psycopg.connect(POSTGRES) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")  # type: ignore[arg-type]


def test_every_admin_action_and_denial_is_audited_in_postgres(
    start_gateway: GatewayFactory, tmp_path: Path, postgres_table: str
) -> None:
    access = {"key_store": str(tmp_path / "keys.sqlite"), "audit": {"dsn": POSTGRES, "table": postgres_table}}
    with start_gateway(master_key=MASTER, access=access) as url:
        key_id = exercise(url)
    check_entries(asyncio.run(PostgresAuditLog(POSTGRES, postgres_table).entries()), key_id)
    with psycopg.connect(POSTGRES) as conn:
        count = conn.execute(f"SELECT count(*) FROM {postgres_table} WHERE target = %s", (key_id,)).fetchone()  # type: ignore[arg-type]
    assert count is not None and count[0] >= 2
    assert not (tmp_path / "audit.sqlite").exists()


def test_a_required_audit_log_that_fails_refuses_the_change(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    access = {"key_store": str(tmp_path / "keys.sqlite"), "audit": {"dsn": UNREACHABLE, "required": True}}
    with start_gateway(master_key=MASTER, access=access) as url:
        refused = call(url, MASTER, "POST", "/admin/keys", {"role": "admin"})
        assert refused.status_code == 503, refused.text
        assert "audit.required" in refused.json()["error"]["message"]
        assert call(url, MASTER, "GET", "/admin/router").status_code == 503
    assert asyncio.run(SqliteKeyStore(tmp_path / "keys.sqlite").list_keys()) == []


def test_an_optional_audit_log_that_fails_does_not_block(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    access = {"key_store": str(tmp_path / "keys.sqlite"), "audit": {"dsn": UNREACHABLE}}
    with start_gateway(master_key=MASTER, access=access) as url:
        assert call(url, MASTER, "POST", "/admin/keys", {"role": "user"}).status_code == 200
    assert len(asyncio.run(SqliteKeyStore(tmp_path / "keys.sqlite").list_keys())) == 1


def test_audit_entries_are_stored_without_secrets(tmp_path: Path) -> None:
    canary = "sk-canary-audit-0123456789abcdef"
    log = SqliteAuditLog(tmp_path / "audit.sqlite", "routeiq_audit")
    entry = AuditEntry(actor="master", action="key.create", target=f"Bearer {canary}", outcome="allowed")
    entry.details["note"] = f"client sent api_key={canary}"
    asyncio.run(log.record(entry))
    assert canary.encode() not in (tmp_path / "audit.sqlite").read_bytes()
    (stored,) = asyncio.run(log.entries())
    assert "[REDACTED]" in stored.target and "[REDACTED]" in stored.details["note"]


def test_router_versions_going_live_or_failing_are_audited(
    start_gateway: GatewayFactory, tmp_path: Path, data_dir: Path
) -> None:
    save_two_model_router(data_dir, tmp_path / "router", "cheapest")
    routing = {"reference": str(tmp_path / "router")}
    with start_gateway(master_key=MASTER, routing=routing):
        pass
    (tmp_path / "not-a-router").mkdir()
    with start_gateway(master_key=MASTER, routing={"reference": str(tmp_path / "not-a-router")}):
        pass
    entries = asyncio.run(SqliteAuditLog(tmp_path / "audit.sqlite", "routeiq_audit").entries())
    seen = {(e.actor, e.action, e.target, e.outcome) for e in entries}
    assert ("registry", "router.loaded", "champion", "allowed") in seen
    assert ("registry", "router.failed", "champion", "denied") in seen
    failed = next(e for e in entries if e.action == "router.failed")
    assert "not-a-router" in failed.details["message"]
