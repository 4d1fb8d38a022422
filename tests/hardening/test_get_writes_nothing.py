"""A GET changes nothing: every route of ours is opened with GET by an admin who is also staff, on real rows
(``tests/hardening/route_world.py``: a URL's ``<int:pk>`` names a row of each kind, a media path a stored file), and
every INSERT, UPDATE or DELETE the request sends is recorded. No route may be reached only as a 404 (its view never
ran) unless ``REACHED_ONLY_AS_404`` says why; each HTML page opened carries the Content-Security-Policy and holds no
markup it refuses.
Found this way: the impact preview's GET ran the model on up to 2,000 items and kept the run (``?refresh=1`` each
time). The session's own rows (sign-in) are not the app's writes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from tests.hardening.route_world import REACHED_ONLY_AS_404, RouteWorld, route_world, writes_into
from tests.hardening.test_route_matrix import NOT_OURS, _routes
from tests.workbench.test_csp import _refused_in
from workbench.csp import HEADER


def _urls(world: RouteWorld) -> list[tuple[str, str]]:
    """(route name, its address on ``world``'s real rows) for every route of ours."""
    urls = []
    for name, pattern, _params in _routes():
        if name.startswith(NOT_OURS) or name == "logout":
            continue
        url = world.url(name, pattern)
        if url:  # none for DRF's ".json" twin of a route opened without it
            urls.append((name, url))
    return urls


@pytest.fixture
def admin_on_world(make_user, settings, tmp_path) -> tuple[Client, RouteWorld]:  # type: ignore[no-untyped-def]
    """A client signed in as an admin who is also staff, and the rows every route is opened on (the review and
    tags items held by that admin)."""
    settings.TRAINING_OUTPUT_DIR = tmp_path  # the dataset's snapshot file
    user = make_user("admin")
    type(user).objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    world = route_world(holder=user)
    client = Client()
    client.force_login(user)
    return client, world


@pytest.mark.django_db
def test_no_trace_or_made_up_method_on_our_routes_runs_a_view(admin_on_world: tuple[Client, RouteWorld]) -> None:
    """TRACE (a safe method to CSRF) and made-up methods ran a function view as a GET does: the page rendered, its
    reads and any write a GET would make. Every route answers them 405 with ``Allow`` now, writing nothing."""
    client, world = admin_on_world
    statements: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "django_session" not in sql:
            statements.append(sql[:120])
        return execute(sql, params, many, context)

    found: list[str] = []
    urls = _urls(world)
    for name, url in urls:
        for method in ("TRACE", "CONNECT", "PURGE"):
            statements.clear()
            with connection.execute_wrapper(record):
                response = client.generic(method, url)
            if response.status_code != 405 or "TRACE" in response.get("Allow", "TRACE") or statements:
                found.append(
                    f"{method} {url} ({name}, {response.status_code}, {response.get('Allow')}): {statements[:3]}"
                )
    assert not found, "\n".join(found)
    assert len(urls) > 100  # every route of ours, not a few


@pytest.mark.django_db
def test_no_get_of_our_routes_writes_to_the_database(admin_on_world: tuple[Client, RouteWorld]) -> None:
    client, world = admin_on_world
    writes: list[str] = []
    record = writes_into(writes)

    found: list[str] = []
    opened = 0
    for name, url in _urls(world):
        # HEAD too: Django's CSRF check passes it as it passes GET, so a view writing on "not GET" would be a
        # cross-site write (none does: checked here so none comes to).
        for method in ("GET", "HEAD"):
            writes.clear()
            with connection.execute_wrapper(record):
                response = client.generic(method, url)
            status = response.status_code
            if writes:
                found.append(f"{method} {url} ({name}, {status}) wrote: {writes[:3]}")
            if method == "HEAD":
                continue
            opened += status == 200
            # A route reached only as a 404 was never run (its view stopped at the lookup): its row is in the world.
            if status == 404 and name not in REACHED_ONLY_AS_404:
                found.append(f"GET {url} ({name}): 404, its view never ran (make its row in route_world.py)")
            # The page as rendered holds nothing the Content-Security-Policy refuses (test_csp.py scans the templates;
            # this, what views and template tags add to them), and carries the policy.
            if status == 200 and not response.streaming and response["Content-Type"].startswith("text/html"):
                refused = _refused_in(response.content.decode())
                if refused or HEADER not in response:
                    found.append(f"GET {url} ({name}): {refused[:2] or 'no ' + HEADER}")
    assert not found, "\n".join(found)
    # The pages opened: 47 before the policy, the claimed item, the Tag2CoT task and the training job were made at
    # the id (their pages were 404s and 403s, their views never ran); 54 before the pair, the tags item, the
    # proposal's sightings, the adjudication, the dataset's download and a media file were made.
    assert opened >= 60
