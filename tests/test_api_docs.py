"""The API documentation: a valid OpenAPI document in which every operation is titled, described, tagged and
(where it has a body) shown by example; examples that match their schemas; Swagger UI and ReDoc from local
assets only."""

import re

import pytest
from django.test import Client
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from evpay.api.docs import TAGS

METHODS = ("get", "post", "put", "patch", "delete")
EXPECTED_TAGS = {
    "Payment intents",
    "Refunds",
    "Charge sessions",
    "Tariffs",
    "Terminals",
    "Webhooks",
    "Events",
    "Charging infrastructure",
    "Health",
    "Auth",
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _examples(media: dict) -> list:
    if "example" in media:
        return [media["example"]]
    return [example["value"] for example in media.get("examples", {}).values()]


def test_the_schema_is_valid_openapi(schema):
    validate(schema)  # raises on any violation of the OpenAPI 3.0 specification


def test_every_operation_has_summary_description_and_a_known_tag(schema):
    tags = {tag["name"] for tag in schema["tags"]}
    assert tags == EXPECTED_TAGS
    missing = []
    for name, operation in operations(schema):
        if not operation.get("summary"):
            missing.append(f"{name}: summary")
        if not operation.get("description"):
            missing.append(f"{name}: description")
        if not operation.get("tags") or not set(operation["tags"]) <= tags:
            missing.append(f"{name}: tag ({operation.get('tags')})")
    assert not missing, "\n".join(missing)


def test_every_body_has_an_example(schema):
    missing = []
    for name, operation in operations(schema):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not _examples(media):
                missing.append(f"{name}: request {media_type}")
        for status, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if not _examples(media):
                    missing.append(f"{name}: response {status} {media_type}")
    assert not missing, "\n".join(missing)


def test_summaries_are_unique_titles_not_operation_ids(schema):
    summaries = [operation["summary"] for _, operation in operations(schema)]
    assert len(summaries) == len(set(summaries))
    assert not [s for s in summaries if re.fullmatch(r"[a-z0-9_]+", s)]


def _inline(subschema, document, depth=0):
    """The subschema with every `$ref` to #/components/schemas replaced by its target (OpenAPI 3.0 schemas are
    not recursive here), so that a plain OAS 3.0 validator can check an example against it."""
    if depth > 30:
        raise AssertionError("schema nests too deep")
    if isinstance(subschema, dict):
        if "$ref" in subschema:
            name = subschema["$ref"].rsplit("/", 1)[-1]
            return _inline(document["components"]["schemas"][name], document, depth + 1)
        if len(subschema.get("allOf", ())) == 1:  # drf-spectacular's `allOf: [$ref]` + nullable/readOnly/description
            others = {key: value for key, value in subschema.items() if key != "allOf"}
            return {**_inline(subschema["allOf"][0], document, depth + 1), **others}
        return {key: _inline(value, document, depth + 1) for key, value in subschema.items()}
    if isinstance(subschema, list):
        return [_inline(value, document, depth + 1) for value in subschema]
    return subschema


def test_examples_match_their_schemas(schema):
    wrong = []
    for name, operation in operations(schema):
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [(f"response {status}", r.get("content", {})) for status, r in operation["responses"].items()]
        for where, content in bodies:
            for media in content.values():
                body_schema = _inline(media.get("schema", {}), schema)
                for example in _examples(media):
                    for error in OAS30Validator(body_schema).iter_errors(example):
                        path = "/".join(str(p) for p in error.absolute_path)
                        wrong.append(f"{name} {where} at {path or '.'}: {error.message[:200]}")
    assert not wrong, "\n".join(wrong)


def test_the_authorize_example_shows_the_test_tokens(schema):
    media = schema["paths"]["/v1/payment-intents/{id}/authorize"]["post"]["requestBody"]["content"]["application/json"]
    tokens = {example["payment_method"]["token"] for example in _examples(media)}
    assert {"tok_visa", "tok_mastercard", "tok_chargeDeclined", "tok_processorUnavailable"} <= tokens


def test_the_description_is_the_guide(schema):
    guide = schema["info"]["description"]
    for heading in ("## Authentication", "## Errors", "## Idempotency", "## Lists and pagination", "## Money"):
        assert heading in guide
    assert "webhook-signature" in guide and "standardwebhooks" in guide  # how to verify a delivery


def test_tags_cover_every_path(schema):
    untagged = [path for path in schema["paths"] if not any(path.startswith(prefix) for prefix, _, _ in TAGS)]
    assert not untagged


@pytest.mark.parametrize("page", ["/api/docs", "/api/redoc"])
def test_docs_pages_load_nothing_from_another_host(client, page):
    response = Client().get(page)
    assert response.status_code == 200
    html = response.content.decode()
    external = re.findall(r"""(?:src|href)=["'](https?:)?//[^"']+""", html)
    assert not external, external
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)""", html)
    assert any("drf_spectacular_sidecar" in asset for asset in assets), assets
    for asset in assets:
        served = Client().get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content if served.streaming else [served.content])
