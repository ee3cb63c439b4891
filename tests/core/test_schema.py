"""The OpenAPI schema tells the truth (issue 12, item 3): every operation documents the errors it
can answer with the one error body, each DELETE answers 204 with no body, JSON is offered where the
API takes JSON, and operations and their answers are described for integrators. (What the API
really answers is checked against the schema by tests/core/test_schemathesis.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.companies.scoping import CompanyScopedAPIView
from apps.core.schema import ERROR_DESCRIPTIONS

pytestmark = pytest.mark.django_db

ERROR_REF = {"$ref": "#/components/schemas/ApiError"}
MULTIPART = {("POST", "/api/v1/caller-ids/"), ("POST", "/api/v1/verification/")}


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_every_operation_documents_its_error_answers_with_the_one_error_body(schema) -> None:
    missing = []
    for method, path, op in operations(schema):
        wanted = {"400", "401", "403", "429", "503"}
        if "{" in path or "page" in {p["name"] for p in op.get("parameters", [])}:
            wanted.add("404")
        if method in ("POST", "PUT", "PATCH"):
            wanted.add("413")
        if "Idempotency-Key" in {p["name"] for p in op.get("parameters", [])}:
            wanted.add("409")
        for code in sorted(wanted):
            response = op["responses"].get(code)
            if response is None or response["content"]["application/json"]["schema"] != ERROR_REF:
                missing.append(f"{method} {path} {code}")

    assert len(operations(schema)) >= 60
    assert missing == []


def test_the_error_body_is_one_component_whose_fields_are_described(schema) -> None:
    error = schema["components"]["schemas"]["ApiError"]

    assert set(error["required"]) == {"detail", "code", "errors"}
    assert error["properties"]["errors"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert all(field["description"] for field in error["properties"].values())
    assert "Retry-After" in schema["paths"]["/api/v1/company/"]["get"]["responses"]["429"]["headers"]


def test_every_answer_says_what_it_means(schema) -> None:
    undescribed = [
        f"{method} {path} {code}"
        for method, path, op in operations(schema)
        for code, response in op["responses"].items()
        if not response.get("description")
    ]
    company = schema["paths"]["/api/v1/company/"]["get"]["responses"]

    assert undescribed == []
    assert company["401"]["description"] == ERROR_DESCRIPTIONS["401"]


def test_every_delete_answers_204_with_no_body_and_nothing_else_on_success(schema) -> None:
    deletes = [(path, op) for method, path, op in operations(schema) if method == "DELETE"]
    success = {path: {c: r for c, r in op["responses"].items() if c.startswith("2")} for path, op in deletes}

    assert len(deletes) == 8
    assert all(list(answers) == ["204"] and "content" not in answers["204"] for answers in success.values())


def test_every_operation_has_a_summary_and_a_description_of_its_own(schema) -> None:
    base_doc = (CompanyScopedAPIView.__doc__ or "").strip().splitlines()[0]
    bad = [
        f"{method} {path}"
        for method, path, op in operations(schema)
        if not op.get("summary") or not op.get("description") or base_doc in op["description"]
    ]
    summaries = [op["summary"] for _, _, op in operations(schema)]

    assert bad == []
    assert len(set(summaries)) == len(summaries)  # each names its own operation


def test_lists_say_how_they_page_and_money_moves_say_how_to_retry(schema) -> None:
    profiles = schema["paths"]["/api/v1/sip-profiles/"]["get"]
    allocate = schema["paths"]["/api/v1/sip-profiles/{id}/credit/"]["post"]
    page_size = next(p for p in profiles["parameters"] if p["name"] == "page_size")

    assert "Paginated" in profiles["description"]
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert "Idempotency-Key" in allocate["description"]
    assert "409" in allocate["responses"]


def test_bodies_are_offered_as_json_except_where_files_are_uploaded(schema) -> None:
    offered = {
        (method, path): sorted(op["requestBody"]["content"])
        for method, path, op in operations(schema)
        if "requestBody" in op
    }

    assert {k: v for k, v in offered.items() if k in MULTIPART} == {k: ["multipart/form-data"] for k in MULTIPART}
    assert {k: v for k, v in offered.items() if k not in MULTIPART} == {
        k: ["application/json"] for k in offered if k not in MULTIPART
    }


def test_caller_id_options_are_documented_as_the_plain_list_they_are(schema, company, owner) -> None:
    from tests.conftest import client_as

    answer = schema["paths"]["/api/v1/caller-ids/options/"]["get"]["responses"]["200"]["content"]["application/json"]
    body = client_as(owner).get("/api/v1/caller-ids/options/").json()

    assert answer["schema"]["type"] == "array"
    assert body == []


def test_every_tag_is_described(schema) -> None:
    used = {tag for _, _, op in operations(schema) for tag in op["tags"]}
    described = {tag["name"]: tag["description"] for tag in schema["tags"]}

    assert used <= set(described)
    assert all(described.values())


def test_a_page_size_that_is_not_a_whole_number_in_range_is_a_400_naming_it(company, owner) -> None:
    from tests.conftest import client_as

    client = client_as(owner)
    answers = [client.get("/api/v1/members/", {"page_size": v}) for v in ("null", "0", "201", "٣")]
    page = client.get("/api/v1/members/", {"page": "abc"})
    past_the_end = client.get("/api/v1/members/", {"page": "9"})

    assert [(a.status_code, list(a.json()["errors"])) for a in answers] == [(400, ["page_size"])] * 4
    assert "from 1 to 200" in answers[0].json()["detail"]
    assert (page.status_code, list(page.json()["errors"])) == (400, ["page"])
    assert (past_the_end.status_code, past_the_end.json()["code"]) == (404, "not_found")


def test_a_boolean_filter_takes_true_or_false_and_refuses_anything_else(company, owner) -> None:
    from tests.conftest import client_as

    client = client_as(owner)
    refused = [client.get("/api/v1/numbers/", {"auto_renew": v}) for v in ("yes", "1.6e308", "")]
    taken = [client.get("/api/v1/numbers/", {"auto_renew": v}).status_code for v in ("true", "false", "1", "0")]

    assert [(r.status_code, list(r.json()["errors"])) for r in refused[:2]] == [(400, ["auto_renew"])] * 2
    assert refused[2].status_code == 200  # an empty filter filters nothing
    assert taken == [200, 200, 200, 200]


def test_an_unknown_format_is_a_400_naming_the_parameter(owner_api) -> None:
    response = owner_api.get("/api/v1/reports/summary/?format=%05")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "format" in response.json()["errors"]
    assert owner_api.get("/api/v1/reports/summary/?format=csv").status_code == 200


def test_a_quote_parameter_that_is_not_yes_or_no_is_a_400_and_buys_nothing(owner_api) -> None:
    from apps.sip_profiles.models import SipProfile

    body = {"name": "Quoted PBX", "auth_method": "registration", "channels": 1}
    response = owner_api.post("/api/v1/sip-profiles/?quote=null&quote=null", body, format="json")

    assert response.status_code == 400
    assert "quote" in response.json()["errors"]
    assert not SipProfile.objects.filter(name="Quoted PBX").exists()
