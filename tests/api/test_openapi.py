"""The OpenAPI document is valid, and real responses conform to it."""

from __future__ import annotations

from typing import Any

import jsonschema
from openapi_spec_validator import validate

from remediator.api.openapi import openapi_document
from tests.api.conftest import ClientFactory
from tests.api.test_webhook import post
from tests.conftest import load_fixture


def test_document_is_valid_openapi() -> None:
    validate(openapi_document())


def conforms(document: dict[str, Any], schema_name: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)


async def test_served_document_and_real_responses_conform(make_client: ClientFactory) -> None:
    client = await make_client()
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert document == openapi_document()
    conforms(document, "WebhookBody", load_fixture("crashloop-one-resolved-one-firing.json"))
    await post(client, load_fixture("crashloop-two-pods-firing.json"))
    conforms(document, "IncidentPage", await (await client.get("/api/v1/incidents")).json())
    conforms(document, "IncidentDetail", await (await client.get("/api/v1/incidents/1")).json())
    conforms(document, "RuleList", await (await client.get("/api/v1/rules")).json())
    ack = await client.post("/api/v1/incidents/1/ack")
    conforms(document, "IncidentDetail", await ack.json())
    conforms(document, "Error", await (await client.post("/api/v1/incidents/1/ack")).json())


def test_every_route_is_documented() -> None:
    from remediator.app import create_app
    from remediator.config import Config

    app = create_app(Config())
    documented = set(openapi_document()["paths"])
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        path = path.replace(r"{id:\d+}", "{id}")
        if route.method == "HEAD" or path == "/api/v1/openapi.json":
            continue
        if path.startswith("/api/") or path == "/-/reload":
            assert path in documented, f"{route.method} {path} missing from the OpenAPI document"
