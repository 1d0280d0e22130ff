"""API bearer tokens and roles: viewer reads, operator acts, admin reloads."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import ClientFactory
from tests.api.test_webhook import post
from tests.conftest import load_fixture

TOKENS = {
    "tokens": [
        {"name": "dash", "token": "view-token", "role": "viewer"},
        {"name": "oncall", "token_env": "ONCALL_TOKEN", "role": "operator"},
        {"name": "ci", "token_file": "admin-token", "role": "admin"},
    ]
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_roles(make_client: ClientFactory, tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("ONCALL_TOKEN", "oncall-token")
    (tmp_path / "admin-token").write_text("admin-token\n")
    client = await make_client(auth=TOKENS)
    # The webhook has its own auth (none configured here), independent of API tokens.
    assert (await post(client, load_fixture("diskfill-firing.json"))).status == 200

    assert (await client.get("/api/v1/incidents")).status == 401
    assert (await client.get("/api/v1/incidents", headers=bearer("wrong"))).status == 401
    assert (await client.get("/api/v1/incidents", headers=bearer("view-token"))).status == 200

    denied = await client.post("/api/v1/incidents/1/ack", headers=bearer("view-token"))
    assert denied.status == 403
    assert "operator" in (await denied.json())["error"]
    acked = await client.post("/api/v1/incidents/1/ack", headers=bearer("oncall-token"))
    assert acked.status == 200
    assert (await acked.json())["acknowledged_by"] == "oncall"

    assert (await client.post("/-/reload", headers=bearer("oncall-token"))).status == 403
    assert (await client.post("/-/reload", headers=bearer("admin-token"))).status == 200

    # Probes and metrics stay open: Kubernetes and Prometheus carry no API token.
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"):
        assert (await client.get(path)).status == 200, path
