"""Every route × every role and an anonymous visitor, against ONE table of who may use what.

The routes come from the URLconf, so a new route without an entry here fails the suite: adding a
route means deciding who may use it. Objects named in URLs do not exist (id 999999): an allowed
user gets past the permission check (a 404 or a 400 for the empty form, never a 403), a refused
one gets 403 before anything is looked up, an anonymous visitor is sent to the login page
(pages) or gets 401/403 (API).

Then every GET route that names an object is opened again on a real one (``tests/hardening/route_world.py``, the
rows the GET-writes-nothing scan opens): an allowed user's page runs (200, or a redirect), never a 404, and as no
role does the GET write to the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.hardening.route_world import HELD_BY_ITS_HOLDER, REACHED_ONLY_AS_404, route_world, writes_into
from workbench.roles import ROLES, Perm

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed in"  # any signed-in user, whatever their role
INTEGRATION = "integration token"  # platform integrations only: every user and anonymous are refused

UPLOAD, REVIEW, CORRECT, POLICY, TRAIN, OPS = (
    Perm.UPLOAD_VIDEO,
    Perm.REVIEW_VIDEO,
    Perm.CORRECT_COT,
    Perm.EDIT_POLICY,
    Perm.MANAGE_TRAINING,
    Perm.MANAGE_INTEGRATIONS,
)
READ_CONTENT = (REVIEW, UPLOAD, CORRECT)

# route name -> (HTTP method probed, who may use it: PUBLIC, SIGNED_IN, INTEGRATION or permissions (any of))
ACCESS: dict[str, tuple[str, str | tuple[str, ...]]] = {
    "home": ("GET", SIGNED_IN),
    "login": ("GET", PUBLIC),
    "logout": ("POST", PUBLIC),
    "favicon": ("GET", PUBLIC),
    "api-schema": ("GET", SIGNED_IN),
    "api-docs": ("GET", SIGNED_IN),
    "api-token": ("POST", SIGNED_IN),
    "api-token-page": ("GET", SIGNED_IN),
    "csp-report": ("POST", PUBLIC),  # browsers send reports without credentials (workbench/csp_reports.py)
    "healthz": ("GET", PUBLIC),
    "readyz": ("GET", PUBLIC),
    "metrics": ("GET", (OPS,)),  # or a bearer METRICS_TOKEN (tests/workbench/test_health_metrics.py)
    "media": ("GET", READ_CONTENT),
    "moderation:video_list": ("GET", (UPLOAD,)),
    "moderation:video_upload": ("POST", (UPLOAD,)),
    "moderation:video_detail": ("GET", (UPLOAD, REVIEW)),
    "moderation:video_retry": ("POST", (REVIEW,)),
    "moderation:video_dismiss": ("POST", (REVIEW,)),
    "moderation:queue": ("GET", (REVIEW,)),
    "moderation:review_agreement": ("GET", (REVIEW,)),
    "moderation:claim_next": ("POST", (REVIEW,)),
    "moderation:queue_detail": ("GET", (REVIEW,)),
    "moderation:queue_claim_next": ("POST", (REVIEW,)),
    "moderation:review_reveal": ("POST", SIGNED_IN),
    "moderation:review_task": ("GET", (REVIEW,)),
    "moderation:review_submit": ("POST", (REVIEW,)),
    "moderation:review_skip": ("POST", (REVIEW,)),
    "moderation:review_escalate": ("POST", (REVIEW,)),
    "moderation:review_release": ("POST", (REVIEW,)),
    "moderation:review_rerun": ("POST", (REVIEW,)),  # and only the reviewer holding the item (test_rerun.py)
    "moderation:review_cot": ("GET", (REVIEW,)),
    "moderation:policy_list": ("GET", SIGNED_IN),
    "moderation:policy_detail": ("GET", SIGNED_IN),
    "moderation:policy_edit": ("GET", (POLICY,)),
    "moderation:policy_diff": ("GET", SIGNED_IN),
    "moderation:policy_version": ("GET", SIGNED_IN),
    "moderation:policy_version_publish": ("POST", (POLICY,)),
    "moderation:policy_version_activate": ("POST", (POLICY,)),
    "moderation:policy_version_impact": ("GET", (POLICY,)),
    "moderation:cascade": ("GET", (TRAIN,)),
    "moderation:cascade_train": ("POST", (TRAIN,)),
    "moderation:cascade_threshold": ("POST", (TRAIN,)),
    "moderation:cascade_target": ("POST", (TRAIN,)),
    "moderation:cascade_off": ("POST", (TRAIN,)),
    "moderation:repro_queue": ("GET", (REVIEW,)),
    "moderation:repro_reviewed": ("GET", (REVIEW,)),
    "moderation:repro_claim_next": ("POST", (REVIEW,)),
    "moderation:repro_pair": ("GET", (REVIEW,)),
    "moderation:repro_claim": ("POST", (REVIEW,)),
    "moderation:repro_submit": ("POST", (REVIEW,)),
    "moderation:repro_release": ("POST", (REVIEW,)),
    "moderation:video_repro_pairs": ("GET", (REVIEW,)),
    "moderation:feedback_events": ("POST", INTEGRATION),
    "moderation:api-root": ("GET", SIGNED_IN),
    "moderation:api-video-list": ("GET", READ_CONTENT),
    "moderation:api-video-detail": ("GET", READ_CONTENT),
    "moderation:api-decision-list": ("GET", READ_CONTENT),
    "moderation:api-decision-detail": ("GET", READ_CONTENT),
    "moderation:api-video-verdict": ("GET", READ_CONTENT),
    "moderation:api-label-list": ("GET", READ_CONTENT),
    "moderation:integration_list": ("GET", (OPS,)),
    "moderation:integration_add": ("POST", (OPS,)),
    "moderation:integration_token": ("GET", (OPS,)),
    "moderation:integration_switch": ("POST", (OPS,)),
    "moderation:integration_token_rotate": ("POST", (OPS,)),
    "moderation:webhook_endpoint_add": ("POST", (OPS,)),
    "moderation:webhook_endpoint": ("GET", (OPS,)),
    "moderation:webhook_endpoint_toggle": ("POST", (OPS,)),
    "moderation:webhook_endpoint_events": ("POST", (OPS,)),
    "moderation:webhook_redeliver": ("POST", (OPS,)),
    "moderation:webhook_endpoint_test": ("POST", (OPS,)),
    "moderation:webhook_test_outcome": ("GET", (OPS,)),
    "moderation:ops_dashboard": ("GET", (OPS,)),
    "moderation:ops_routing_repair": ("POST", (OPS,)),
    "moderation:ops_routing_recheck": ("POST", (OPS,)),
    "moderation:ops_missing_decisions_retry": ("POST", (OPS,)),
    "moderation:ops_missing_decisions": ("GET", (OPS,)),
    "moderation:ops_missing_decision_retry": ("POST", (OPS,)),
    "moderation:ops_missing_decision_dismiss": ("POST", (OPS,)),
    "moderation:ops_policy_missing": ("GET", (OPS,)),
    "moderation:ops_policy_missing_repair": ("POST", (OPS,)),
    "moderation:ops_repro_failed_retry": ("POST", (OPS,)),
    "moderation:ops_repro_failed_dismiss": ("POST", (OPS,)),
    "moderation:tag_queue": ("GET", (REVIEW,)),
    "moderation:tag_claim_next": ("POST", (REVIEW,)),
    "moderation:tag_task": ("GET", (REVIEW,)),
    "moderation:tag_panel": ("GET", (REVIEW,)),
    "moderation:tag_submit": ("POST", (REVIEW,)),
    "moderation:tag_try_again": ("POST", (REVIEW,)),
    "moderation:tag_search": ("GET", (REVIEW, POLICY)),  # POLICY: the curation screen's "alias of" type-ahead
    "moderation:tag_ranker": ("GET", (REVIEW,)),
    "moderation:tag_ranker_train": ("POST", (TRAIN,)),
    "moderation:tag_ranker_activate": ("POST", (TRAIN,)),
    "moderation:tag_vocabulary": ("GET", (POLICY,)),
    "moderation:tag_edit": ("POST", (POLICY,)),
    "moderation:tag_import": ("POST", (POLICY,)),
    "moderation:tag_curation": ("GET", (POLICY,)),
    "moderation:tag_set_save": ("POST", (POLICY,)),
    "moderation:tag_proposal_decide": ("POST", (POLICY,)),
    "moderation:tag_proposal_sightings": ("GET", (POLICY,)),
    "annotation:correction_list": ("GET", (CORRECT,)),
    "annotation:correction_edit": ("GET", (CORRECT,)),
    "annotation:correction_review": ("POST", (CORRECT,)),
    "annotation:tag2cot_list": ("GET", (CORRECT,)),
    "annotation:labelstudio_export": ("GET", (CORRECT,)),
    "annotation:tag2cot_queue": ("POST", (CORRECT,)),
    "annotation:tag2cot_write": ("GET", (CORRECT,)),
    "annotation:tag2cot_claim": ("POST", (CORRECT,)),
    "annotation:tag2cot_release": ("POST", (CORRECT,)),
    "annotation:adjudication_list": ("GET", (REVIEW,)),
    "annotation:adjudication_detail": ("GET", (REVIEW,)),
    "training:job_list": ("GET", (TRAIN,)),
    "training:job_start": ("POST", (TRAIN,)),
    "training:job_detail": ("GET", (TRAIN,)),
    "training:job_cancel": ("POST", (TRAIN,)),
    "training:dataset_build": ("POST", (TRAIN,)),
    "training:dataset_download": ("GET", (TRAIN,)),
    "training:tag_events_download": ("GET", (TRAIN,)),
    "training:model_list": ("GET", (TRAIN,)),
    "training:model_promote": ("POST", (TRAIN,)),
    "training:model_shadow": ("POST", (TRAIN,)),
    "training:policy_model_choose": ("POST", (POLICY,)),
    "training:evaluation_start": ("POST", (TRAIN,)),
    "training:evaluation_compare": ("GET", (TRAIN,)),
    "training:evaluation_detail": ("GET", (TRAIN,)),
    "api-training-job-list": ("POST", (TRAIN,)),
    "api-training-job-detail": ("GET", (TRAIN,)),
    "api-evaluation-list": ("POST", (TRAIN,)),
    "api-evaluation-detail": ("GET", (TRAIN,)),
}
# Machine endpoints answer 401/403 like the API (a scraper is not sent to a login page); readiness
# may answer 503 (no worker in the test run) to anyone.
MACHINE = ("metrics", "readyz")
# Django's own admin site: staff accounts only, Django's access control.
NOT_OURS = ("admin:",)
SAMPLE_ARGS = {"int": 999999, "slug": "no-such-queue", "path": "keyframes/0/none.jpg", "str": "999999"}


def _routes() -> Iterator[tuple[str, URLPattern, list[str]]]:
    def walk(
        patterns: list[URLPattern | URLResolver], namespace: str, params: list[str]
    ) -> Iterator[tuple[str, URLPattern, list[str]]]:
        for p in patterns:
            found = re.findall(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>", str(p.pattern))
            names = [*params, *[(g[1] or g[2]) for g in found]]
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, ns, names)
            elif p.name:
                yield f"{namespace}{p.name}", p, names

    yield from walk(get_resolver().url_patterns, "", [])


def _url(name: str, pattern: URLPattern) -> str:
    converters = {k: type(v).__name__.replace("Converter", "").lower() for k, v in pattern.pattern.converters.items()}
    kwargs = {}
    for key in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", str(pattern.pattern)):
        arg = key[0] or key[1]
        if arg == "format":
            return ""
        kwargs[arg] = SAMPLE_ARGS.get(converters.get(arg, "str"), "999999")
    return reverse(name, kwargs=kwargs)


def _allowed(access: str | tuple[str, ...], perms: set[str]) -> bool:
    if access in (PUBLIC, SIGNED_IN):
        return True
    if access == INTEGRATION:
        return False
    return any(p in perms for p in access)


def test_every_route_has_a_permission_decision():
    names = {name for name, _p, _a in _routes() if not name.startswith(NOT_OURS)}
    missing = sorted(names - set(ACCESS))
    assert not missing, f"routes without an entry in ACCESS (decide who may use them): {missing}"
    assert not sorted(set(ACCESS) - names), "ACCESS names routes that no longer exist"


def _visitors(make_user) -> dict[str, tuple[Client, set[str] | None, object]]:  # type: ignore[no-untyped-def]
    """An anonymous visitor, and a signed-in user of each role and of none: their client, permissions, user."""
    from workbench.roles import ROLE_PERMISSIONS

    visitors: dict[str, tuple[Client, set[str] | None, object]] = {"anonymous": (Client(), None, None)}
    for role in (*ROLES, None):
        client, user = Client(), make_user(role)
        client.force_login(user)
        visitors[role or "no role"] = (client, set(ROLE_PERMISSIONS.get(role or "", [])), user)
    return visitors


@pytest.mark.django_db
def test_every_route_answers_every_role_as_the_table_says(make_user):
    visitors = _visitors(make_user)
    wrong: list[str] = []
    seen: set[str] = set()
    for name, pattern, _args in _routes():
        if name.startswith(NOT_OURS) or name in seen or name not in ACCESS or name == "logout":
            continue
        url = _url(name, pattern)
        if not url:  # DRF's ".json" format-suffix twin of a route checked without it
            continue
        seen.add(name)
        method, access = ACCESS[name]
        is_api = url.startswith("/api/") or name in MACHINE
        for who, (client, perms, _user) in visitors.items():
            response = client.get(url) if method == "GET" else client.post(url, {})
            status = response.status_code
            to_login = status == 302 and "/login/" in response.get("Location", "")
            if perms is None and access != PUBLIC:
                ok = status in (401, 403) if is_api else to_login
                expected = "401/403" if is_api else "302 to the login page"
            elif perms is not None and not _allowed(access, perms):
                ok = status in ((401, 403) if access == INTEGRATION else (403,))
                expected = "403"
            else:
                ok = (
                    status not in (401, 403) and not to_login and (status < 500 or (name == "readyz" and status == 503))
                )
                expected = "allowed (not 401/403/login, not 5xx)"
            if not ok:
                wrong.append(f"{method} {url} as {who}: {status}, expected {expected}")
    # Last, since it ends the sessions: anyone may sign out, and lands on the login page.
    for who, (client, _perms, _user) in visitors.items():
        response = client.post(reverse("logout"))
        if not (response.status_code == 302 and "/login/" in response["Location"]):
            wrong.append(f"POST /logout/ as {who}: {response.status_code}, expected 302 to the login page")
    assert not wrong, "\n".join(wrong)
    assert seen | {"logout"} == set(ACCESS)


@pytest.mark.django_db
def test_every_get_route_on_a_real_object_answers_every_role_as_the_table_says_and_writes_nothing(
    make_user, settings, tmp_path
):
    """The routes above that name an object, each opened on a row that exists, by each user the table lets use it: the
    999999 pass shows that a refused user or an anonymous visitor is stopped before the lookup (so a real row changes
    nothing for them, and they are not asked again here), this one that an allowed user's view runs on the row (a 404
    there would hide a lookup that refuses the role, and a view's GET writes for that role would go unseen)."""
    from django.db import connection

    settings.TRAINING_OUTPUT_DIR = tmp_path  # the dataset's snapshot file
    visitors = _visitors(make_user)
    world = route_world(holder=visitors["moderator"][2])  # the held items' pages run for their holder
    writes: list[str] = []
    record = writes_into(writes)

    wrong: list[str] = []
    opened: set[str] = set()
    for name, pattern, params in _routes():
        if name.startswith(NOT_OURS) or not params or ACCESS[name][0] != "GET" or name in opened:
            continue
        url = world.url(name, pattern)
        if not url:  # DRF's ".json" format-suffix twin of a route checked without it
            continue
        opened.add(name)
        access = ACCESS[name][1]
        for who, (client, perms, user) in visitors.items():
            if access != PUBLIC and (perms is None or not _allowed(access, perms)):
                continue  # refused before the lookup (the 999999 pass)
            writes.clear()
            with connection.execute_wrapper(record):
                response = client.get(url)
            status = response.status_code
            to_login = status == 302 and "/login/" in response.get("Location", "")
            if writes:
                wrong.append(f"GET {url} as {who} ({status}) wrote: {writes[:3]}")
            if name in HELD_BY_ITS_HOLDER and user != world.holder:
                ok, expected = status == 403, "403 (held by another reviewer)"
            elif name in REACHED_ONLY_AS_404:
                ok, expected = status in (200, 302, 404) and not to_login, "200, a redirect or 404"
            else:
                ok, expected = status in (200, 302) and not to_login, "200 or a redirect (its view ran on the row)"
            if not ok:
                wrong.append(f"GET {url} as {who}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)
    # Every GET route naming an object was opened (the six that were 404s for want of a row among them).
    assert {
        "moderation:repro_pair",
        "moderation:tag_task",
        "moderation:tag_proposal_sightings",
        "annotation:adjudication_detail",
        "training:dataset_download",
        "media",
    } <= opened
    assert len(opened) >= 25
