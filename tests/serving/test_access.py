"""Virtual keys through the real gateway on loopback: created, used with the openai SDK, listed without
secrets, revoked; expiry, allowed models, roles on admin routes, and failing closed (401/403/503, never 200)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from serving.access.sqlite_store import SqliteKeyStore

MASTER = "sk-master-access-test"
PROMPT = "What is 2 + 2? Answer with one sentence."
GatewayFactory = Callable[..., AbstractContextManager[str]]


def sdk(url: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def ask(url: str, key: str, model: str = "alpha") -> str:
    with sdk(url, key) as client:
        answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPT}])
    return answer.choices[0].message.content or ""


def admin(url: str, key: str, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"})


def create(url: str, body: dict[str, Any], key: str = MASTER) -> dict[str, Any]:
    response = admin(url, key, "POST", "/admin/keys", body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_key_is_created_used_listed_and_revoked(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    with start_gateway(master_key=MASTER) as url:
        created = create(url, {"team": "search", "role": "user", "rpm": 60, "tpm": 1000, "max_budget_usd": 5.0})
        secret = created["key"]
        assert secret.startswith("sk-riq-") and created["team"] == "search" and created["rpm"] == 60
        assert ask(url, secret) == "4, says alpha"
        listed = admin(url, MASTER, "GET", "/admin/keys").json()["data"]
        assert [k["id"] for k in listed] == [created["id"]]
        assert listed[0]["max_budget_usd"] == 5.0 and listed[0]["tpm"] == 1000
        assert "key" not in listed[0] and secret not in str(listed) and "digest" not in str(listed)
        stored = (tmp_path / "keys.sqlite").read_bytes()
        assert secret.encode() not in stored and secret[len("sk-riq-") :].encode() not in stored
        revoked = admin(url, MASTER, "DELETE", f"/admin/keys/{created['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        with pytest.raises(openai.AuthenticationError, match="revoked"):
            ask(url, secret)
        with pytest.raises(openai.AuthenticationError):
            ask(url, secret[:-1] + ("A" if secret[-1] != "A" else "B"))  # one character off


def test_an_expired_key_is_refused(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        secret = create(url, {"expires_at": time.time() + 1.0})["key"]
        assert ask(url, secret)
        time.sleep(1.1)
        with pytest.raises(openai.AuthenticationError, match="expired"):
            ask(url, secret)
        past = admin(url, MASTER, "POST", "/admin/keys", {"expires_at": time.time() - 10})
        assert past.status_code == 400 and past.json()["error"]["param"] == "expires_at"


def test_a_key_may_only_use_its_allowed_models(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        secret = create(url, {"allowed_models": ["alpha"]})["key"]
        assert ask(url, secret, "alpha") == "4, says alpha"
        with pytest.raises(openai.PermissionDeniedError, match="may not use model 'beta'") as denied:
            ask(url, secret, "beta")
        assert denied.value.status_code == 403
        with sdk(url, secret) as client, pytest.raises(openai.PermissionDeniedError):
            client.embeddings.create(model="beta", input="x")
        assert ask(url, MASTER, "beta") == "4, says beta"  # the master key is not limited


def test_roles_gate_the_admin_routes(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        user = create(url, {"role": "user"})["key"]
        operator = create(url, {"role": "operator"})["key"]
        admin_key = create(url, {"role": "admin"})["key"]
        assert admin(url, user, "GET", "/admin/router").status_code == 403
        assert admin(url, user, "GET", "/admin/keys").json()["error"]["code"] == "permission_denied"
        assert admin(url, operator, "GET", "/admin/router").status_code == 200
        assert admin(url, operator, "GET", "/admin/keys").status_code == 403
        assert admin(url, operator, "POST", "/admin/keys", {}).status_code == 403
        assert ask(url, operator) and ask(url, user)
        made_by_admin = create(url, {"role": "user"}, key=admin_key)
        assert admin(url, admin_key, "DELETE", f"/admin/keys/{made_by_admin['id']}").status_code == 200
        assert admin(url, "sk-riq-unknown", "GET", "/admin/router").status_code == 401
        assert admin(url, MASTER, "GET", "/admin/router").status_code == 200


def test_without_master_key_or_keys_admin_routes_deny(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=None) as url:
        for method, path in (("GET", "/admin/router"), ("GET", "/admin/keys"), ("POST", "/admin/keys")):
            denied = admin(url, "anything", method, path, {} if method == "POST" else None)
            assert denied.status_code == 401, (path, denied.text)
            assert "master_key" in denied.json()["error"]["message"]
        assert ask(url, "unused") == "4, says alpha"  # /v1 stays open, as before keys existed


def test_bad_key_requests_get_openai_shaped_errors(start_gateway: GatewayFactory) -> None:
    with start_gateway(master_key=MASTER) as url:
        for body, param in (({"role": "root"}, "role"), ({"rpm": "5"}, "rpm"), ({"owner": "x"}, "owner")):
            response = admin(url, MASTER, "POST", "/admin/keys", body)
            assert response.status_code == 400, body
            assert response.json()["error"]["param"] == param
        missing = admin(url, MASTER, "DELETE", "/admin/keys/key-nope")
        assert missing.status_code == 404 and "GET /admin/keys" in missing.json()["error"]["message"]


def test_an_unusable_key_store_fails_closed(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    with start_gateway(master_key=MASTER) as url:
        secret = create(url, {"role": "admin"})["key"]
        assert ask(url, secret)
        (tmp_path / "keys.sqlite").write_bytes(b"this is not a database" * 100)
        with pytest.raises(openai.InternalServerError) as down:
            ask(url, secret)
        assert down.value.status_code == 503
        assert admin(url, secret, "GET", "/admin/router").status_code == 503
        listed = admin(url, MASTER, "GET", "/admin/keys")
        assert listed.status_code == 503 and listed.json()["error"]["code"] == "access_unavailable"
        assert ask(url, MASTER)  # the master key does not need the store


def test_an_open_gateway_with_an_unreachable_store_denies(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    (tmp_path / "store-is-a-dir").mkdir()
    access = {"key_store": str(tmp_path / "store-is-a-dir"), "audit": {"path": str(tmp_path / "audit.sqlite")}}
    with start_gateway(master_key=None, access=access) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": "alpha", "messages": []})
        assert response.status_code == 503


def test_keys_are_found_only_by_their_exact_secret(tmp_path: Path) -> None:
    from serving.access.keys import KeyRequest, mint

    async def scenario() -> None:
        store = SqliteKeyStore(tmp_path / "keys.sqlite", secret="a-pepper-of-sixteen-chars")
        first, second = mint(KeyRequest()), mint(KeyRequest(team="t"))
        await store.add(first)
        await store.add(second)
        assert (await store.find(first.secret)) == first.record
        assert (await store.find(second.secret)) == second.record
        assert await store.find(first.secret + "x") is None
        other_pepper = SqliteKeyStore(tmp_path / "keys.sqlite", secret="another-pepper-value")
        assert await other_pepper.find(first.secret) is None  # the digest depends on the server's secret

    asyncio.run(scenario())
