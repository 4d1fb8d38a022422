"""Schema-driven fuzzing: Schemathesis generates requests for every operation of the generated
OpenAPI schema and sends them to the live test server as each role (and as a platform integration).

Checks on every response: never a server error, and every documented response (status, content
type, body) conforms to the schema. A new API operation is covered as soon as it is in the schema.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from drf_spectacular.settings import spectacular_settings
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from moderation.integrations.services import integration_create
from tests.factories import DecisionFactory
from workbench.roles import ROLES
from workbench.tokens import api_token_issue

EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# The schema is the same document for every caller (drf-spectacular's SERVE_PUBLIC, left at its default True: it is
# generated without the request's user), so its generated inputs (format, lang) are sent as one identity: the other
# four sent the same inputs to the same generator, 40 of its ~0.4 s generations, a quarter of this test. Who may
# read it is tests/hardening/test_route_matrix.py's (every role) and tests/workbench/test_api_error_schema.py's
# (an integration token, none, a wrong one).
SCHEMA = "GET /api/schema/"
SCHEMA_FUZZED_AS = "integration"


@pytest.mark.django_db(transaction=True)
def test_every_api_operation_answers_generated_input_without_a_server_error(live_server, make_user):
    DecisionFactory()  # a real video and decision, so generated ids sometimes hit rows
    identities = {role: {"Authorization": f"Token {api_token_issue(user=make_user(role)).key}"} for role in ROLES}
    _integration, token = integration_create(name="fuzz")
    identities["integration"] = {"Authorization": f"Integration {token}"}

    raw = requests.get(f"{live_server.url}/api/schema/?format=json", headers=identities["admin"], timeout=30)
    assert raw.status_code == 200, raw.text[:300]
    schema = schemathesis.openapi.from_dict(raw.json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert spectacular_settings.SERVE_PUBLIC, "the schema depends on its caller: fuzz it as every identity again"
    assert len(operations) >= 8, [op.label for op in operations]

    failures: list[str] = []
    statuses: dict[tuple[str, int], int] = {}

    def fuzz(operation: schemathesis.APIOperation, headers: dict[str, str]) -> None:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def probe(case: schemathesis.Case) -> None:
            response = case.call(base_url=live_server.url, headers=headers, timeout=60)
            key = (operation.label, response.status_code)
            statuses[key] = statuses.get(key, 0) + 1
            case.validate_response(response, checks=CHECKS)

        probe()

    for operation in operations:
        for who, headers in identities.items():
            if operation.label == SCHEMA and who != SCHEMA_FUZZED_AS:
                continue
            try:
                fuzz(operation, headers)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{operation.label} as {who}: {str(exc)[:800]}")
    # The fuzzing reached the code behind the permission checks: every operation answered someone
    # with something other than 401/403. Except POST /api/token/: every identity here is a token, and a token
    # never renews itself (403); its session calls are tested in tests/workbench/test_api_token_page.py. A generated
    # body with a NUL (in a multipart field's name) is refused before authentication by the NUL check (400): no
    # token got past the refusal either way (a 200 would be a token renewing itself).
    reached = {label for (label, status) in statuses if status not in (401, 403)} - {"POST /api/token/"}
    assert reached == {op.label for op in operations} - {"POST /api/token/"}, sorted(statuses.items())
    assert {status for (label, status) in statuses if label == "POST /api/token/"} <= {400, 401, 403}
    assert not failures, "\n\n".join(failures)
