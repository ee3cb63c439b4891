"""A Python client generated from the API's own schema by openapi-python-client (issue 12, item 3):
every module of it imports, and through it an integrator lists, creates, reads and deletes a SIP
profile, reads and allocates its credit, and gets a 400 and a 404 as the typed error model, from
the live test server."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.companies.models import Role
from tests.factories import CompanyFactory, api_key_for, grant

PACKAGE = "skypemanager_client"
# Receipts are PDFs: the generator has no model for that media type, so it hands the bytes over.
CONFIG = {"post_hooks": [], "content_type_overrides": {"application/pdf": "application/octet-stream"}}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client, generated once for this module from the schema the app serves at /api/v1/schema/
    (the same generator, without a request: a module fixture has no database)."""
    tmp_path = tmp_path_factory.mktemp("client")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    generator = Path(sys.executable).with_name("openapi-python-client")
    command = [str(generator), "generate", "--path", str(schema), "--meta", "none", "--config", str(config)]
    run = subprocess.run(  # noqa: S603 - the generator from our own virtualenv, on our own schema
        [*command, "--output-path", str(tmp_path / PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # An operation or model the generator cannot read is left out of the client, with a warning.
    assert "Warning" not in run.stdout, run.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_every_module_of_the_generated_client_imports(generated: ModuleType) -> None:
    failures = {}
    names = [m.name for m in pkgutil.walk_packages(generated.__path__, PACKAGE + ".")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # every failure is listed, not only the first
            failures[name] = repr(error)

    assert failures == {}
    assert sum(".api." in n for n in names) >= 60  # one module per operation


@pytest.mark.django_db(transaction=True)
def test_an_integrator_manages_a_profile_and_its_credit_through_the_generated_client(
    generated: ModuleType, live_server: Any
) -> None:
    company = CompanyFactory(currency="GBP")
    grant(company, "100.00")
    _, key = api_key_for(company, Role.ADMIN)
    client = generated.AuthenticatedClient(base_url=live_server.url, token=key, raise_on_unexpected_status=True)
    models = _module("models")
    api = "api.sip_profiles."

    empty = _module(api + "sip_profiles_list").sync(client=client)
    created = _module(api + "sip_profiles_create").sync(
        client=client,
        body=models.SipProfileListInputRequest(
            name="Office PBX", auth_method=models.AuthMethodEnum.REGISTRATION, channels=2
        ),
    )
    listed = _module(api + "sip_profiles_list").sync(client=client)
    read = _module(api + "sip_profiles_retrieve").sync(id=created.id, client=client)
    moved = _module(api + "sip_profile_credit_move").sync(
        id=created.id,
        client=client,
        body=models.ProfileCreditInputRequest(action=models.ProfileCreditInputActionEnum.ALLOCATE, amount="25.00"),
        idempotency_key="first-allocation",
    )
    credit = _module(api + "sip_profile_credit").sync(id=created.id, client=client)
    balances = _module("api.credit.credit_balances").sync(client=client)

    assert (empty.count, empty.results) == (0, [])
    assert isinstance(created, models.SipProfileCreated)
    assert created.password
    assert created.sip_username
    assert [p.name for p in listed.results] == ["Office PBX"]
    assert (read.id, read.channels, read.auth_method) == (created.id, 2, models.AuthMethodEnum.REGISTRATION)
    assert isinstance(moved, models.ProfileCreditOutput)
    assert Decimal(moved.balance) == Decimal(credit.balance) == Decimal("25")
    assert [Decimal(e.amount) for e in credit.history] == [Decimal("25")]
    assert [Decimal(p.balance) for p in balances.profiles] == [Decimal("25")]


@pytest.mark.django_db(transaction=True)
def test_errors_through_the_generated_client_are_the_typed_error_model_and_delete_is_204(
    generated: ModuleType, live_server: Any
) -> None:
    company = CompanyFactory(currency="GBP")
    grant(company, "100.00")
    _, key = api_key_for(company, Role.ADMIN)
    client = generated.AuthenticatedClient(base_url=live_server.url, token=key)
    models = _module("models")
    api = "api.sip_profiles."
    profile = _module(api + "sip_profiles_create").sync(
        client=client,
        body=models.SipProfileListInputRequest(name="Desk", auth_method=models.AuthMethodEnum.REGISTRATION, channels=1),
    )

    refused = _module(api + "sip_profiles_create").sync_detailed(
        client=client,
        body=models.SipProfileListInputRequest(name="Desk", auth_method=models.AuthMethodEnum.IP, channels=0),
    )
    deleted = _module(api + "sip_profiles_destroy").sync_detailed(id=profile.id, client=client)
    gone = _module(api + "sip_profiles_retrieve").sync_detailed(id=profile.id, client=client)
    anonymous = _module(api + "sip_profiles_list").sync_detailed(client=generated.Client(base_url=live_server.url))

    assert refused.status_code == 400
    assert isinstance(refused.parsed, models.ApiError)
    assert refused.parsed.code == "invalid"
    assert "channels" in refused.parsed.errors.additional_properties
    assert (deleted.status_code, deleted.content, deleted.parsed) == (204, b"", None)
    assert gone.status_code == 404
    assert isinstance(gone.parsed, models.ApiError)
    assert (gone.parsed.code, gone.parsed.errors.additional_properties) == ("not_found", {})
    assert anonymous.status_code == 401
    assert isinstance(anonymous.parsed, models.ApiError)
    assert anonymous.parsed.code == "not_authenticated"
