"""Bounded property-based run of schemathesis against the live OpenAPI schema: no 5xx anywhere.

The schema is loaded from the running WSGI app (/api/schema/), so it is the one clients see.
Every operation gets a bounded number of generated requests, authenticated as a project admin,
with the project id pinned to a real project so the inputs reach validation and the services.
(schemathesis' pytest plugin does not run under pytest 9, so this drives its Python API.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token

EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def wsgi_app(db):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from config.wsgi import application

    # Like django.test.Client: keep the test's connection (and its transaction) open across
    # WSGI requests instead of closing it at the end of each one.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_no_server_errors_anywhere_in_the_schema(wsgi_app, project, member, pair):
    token = Token.objects.create(user=member("schema-admin", "admin")).key
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    failures: list[str] = []
    operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if case.path_parameters and "project_id" in case.path_parameters:
                case.path_parameters["project_id"] = project.pk
            response = case.call(headers={"Authorization": f"Token {token}"})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
                )

        run()

    assert operations >= 12
    assert not failures, "\n".join(failures[:10])
