"""Schemathesis over the whole API (issue 12, item 3): the schema is loaded from the live test server
as an integrator loads it, and every operation is called with data generated from it (examples,
coverage, fuzzing and the stateful phase that chains operations through their links) with the API
key of a seeded company. Every check runs: no answer is a server error, every status, content type,
header and body is the one the schema documents, data the schema refuses is refused, a deleted
object is gone, and a request without the key is refused.

Bounded: a few examples per operation, a fixed seed (a failure is reproduced by running the test
again) and time budgets, so it takes about a minute."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.companies.models import Role
from tests.billing.stripe_fixtures import localstripe, localstripe_server
from tests.factories import CompanyFactory, api_key_for, grant, member
from tests.numbers.factories import OnlineNumberFactory, populate_numbers
from tests.sip_profiles.factories import digest_profile, ip_profile

# positive_data_acceptance takes a 400 as well: data the schema allows can still break a rule no
# schema can say (a balance that does not hold the amount, a name already taken, a caller ID the
# company does not own), and the API answers those 400 naming the field, as documented on each
# operation. Every other check runs as schemathesis ships it.
#
# Bodies are made from the schema alone, not from earlier answers' data: mixed in, an earlier answer's
# fields fill back a required field that a negative case had removed, and the valid request that
# results is then reported as "invalid data accepted" (seen for PATCH members/{id}/). The stateful
# phase still chains operations through the answers, as its links say, with valid data only: its
# negative steps sent an empty `since` to audit-events/ and called the 200 a mistake, where an empty
# filter filtering nothing is the API's documented rule (README); the other phases send invalid data.
#
# use_after_free is off: DELETE numbers/{id}/ releases the number, and the subscription stays
# readable with status "ended" (its periods and charges are billing history), which that check
# calls a deleted resource still there. Every other DELETE removes its resource, and its own tests
# assert the 204 with no body and the 404 after it.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[phases.examples.extra-data-sources]
responses = false

[phases.coverage.extra-data-sources]
responses = false

[phases.fuzzing.extra-data-sources]
responses = false

[phases.stateful.generation]
mode = "positive"
"""
# Seconds for the phases that go operation by operation, then for the stateful phase on its own: in
# one run with one budget, a loaded machine's slow coverage phase left the stateful phase no time.
TIME_BUDGET_SECONDS = 40
STATEFUL_BUDGET_SECONDS = 20
EXAMPLES_PER_OPERATION = 6
SEED = 12
# One worker: with two, Hypothesis in schemathesis's threads parsed lambdas' source at once and
# CPython 3.11 failed with "SystemError: AST constructor recursion depth mismatch".
WORKERS = 1

__all__ = ["localstripe", "localstripe_server"]  # fixtures: Stripe is localstripe on 127.0.0.1


@pytest.mark.django_db(transaction=True)
def test_every_answer_of_the_api_matches_its_schema_and_none_is_a_server_error(
    live_server: Any, localstripe: Any, tmp_path: Path
) -> None:
    company = CompanyFactory(currency="GBP")
    owner = member(company, Role.OWNER)
    grant(company, "500.00")
    digest_profile(company, owner)
    ip_profile(company, owner)
    populate_numbers(company, owner)
    OnlineNumberFactory()
    _, key = api_key_for(company, Role.ADMIN, creator=owner)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    st = Path(sys.executable).with_name("st")

    def schemathesis(phases: str, budget: int) -> subprocess.CompletedProcess[str]:
        command = [str(st), "--no-color", "--config-file", str(config), "run", f"{live_server.url}/api/v1/schema/"]
        return subprocess.run(  # noqa: S603 - schemathesis from our own virtualenv, against the live test server
            [
                *command,
                *("--url", live_server.url, "--header", f"Authorization: Bearer {key}"),
                *("--checks", "all", "--exclude-checks", "use_after_free", "--phases", phases),
                *("--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED), "--workers", str(WORKERS)),
                *("--max-time", str(budget), "--request-timeout", "10", "--warnings", "off"),
            ],
            cwd=tmp_path,  # its cache directory (.schemathesis/) stays out of the work tree
            capture_output=True,
            text=True,
            timeout=budget + 90,
            check=False,
        )

    run = schemathesis("examples,coverage,fuzzing", TIME_BUDGET_SECONDS)
    stateful = schemathesis("stateful", STATEFUL_BUDGET_SECONDS)
    operations = re.search(r"Operations:\s+(\d+) selected / (\d+) total", run.stdout)
    scenarios = re.search(r"Scenarios:\s+(\d+)", stateful.stdout)

    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert operations is not None, run.stdout
    assert int(operations[1]) == int(operations[2]) >= 60  # every operation of the schema
    assert stateful.returncode == 0, stateful.stdout[-20000:] + stateful.stderr[-5000:]
    assert scenarios is not None, stateful.stdout
    assert int(scenarios[1]) > 0, stateful.stdout  # the stateful phase ran
