"""Pass 8: an adversarial pass over what merged into main on 2026-12-05 from 17:00 UTC: the atomic Redis rate counts
(API, uploads, sign-in), the show-once token page, RoleBackend and the former-backend session middleware, the impact
preview's POST, the Tag2CoT open limit, hard links in integration folders, the cascade's "Switch stage 1 off" and the
GET-writes-nothing scan. Each test below is a finding and its fix, or a probe of an edge that held and is kept so it
stays held."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from moderation.inference.cascade_models import CascadeModel
from moderation.review.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "pw-test-123"  # tests.factories.UserFactory's


def _address() -> str:
    """An address no other test signs in from: the counts live in the run's Redis for 15 minutes."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _stage1() -> CascadeModel:
    return CascadeModel.objects.create(
        name=f"stage1-{uuid.uuid4().hex[:6]}",
        artifact_path="models/stage1.joblib",
        escalate_threshold=0.57,
        is_active=True,
        trained_on=101,
    )


# --- the cascade's stage 1: who switched it off, or changed what it decides alone -------------------------------


def test_switching_stage_1_off_is_in_the_audit_log_with_who_and_what_it_was(make_user) -> None:
    """Finding: "Switch stage 1 off" (and the threshold and target forms beside it) changed which items a model
    decides with no human, and the audit log said nothing: only a log line without the user. Model promotions are
    audited; so are these now, with the actor and the routing before and after."""
    model = _stage1()
    admin = make_user("admin")
    client = Client()
    client.force_login(admin)

    client.post(reverse("moderation:cascade_threshold"), {"threshold": "0.4"})
    client.post(reverse("moderation:cascade_off"))

    events = list(AuditEvent.objects.filter(object_type="cascademodel", object_id=str(model.pk)).order_by("pk"))
    assert [e.action for e in events] == ["cascade.threshold_set", "cascade.switch_off"]
    assert all(e.actor_id == admin.pk for e in events)
    threshold, off = (e.payload for e in events)
    assert threshold["before"]["escalate_threshold"] == 0.57 and threshold["after"]["escalate_threshold"] == 0.4
    assert off["before"] == {"is_active": True} and off["after"]["is_active"] is False and off["name"] == model.name


def test_switching_stage_1_off_needs_the_training_role_and_a_csrf_token(make_user) -> None:
    """Probe (held): a labeler's POST is refused (403), a cross-site POST without the CSRF token is refused (403),
    a GET is not a switch (sent to the screen, 303); stage 1 stays on and nothing is audited."""
    model = _stage1()
    labeler = Client()
    labeler.force_login(make_user("labeler"))
    assert labeler.post(reverse("moderation:cascade_off")).status_code == 403
    cross_site = Client(enforce_csrf_checks=True)
    cross_site.force_login(make_user("admin"))
    assert cross_site.post(reverse("moderation:cascade_off")).status_code == 403
    assert cross_site.get(reverse("moderation:cascade_off")).status_code == 303
    model.refresh_from_db()
    assert model.is_active
    assert not AuditEvent.objects.filter(action__startswith="cascade.").exists()


# --- sign-in: a per-address limit under 1 -----------------------------------------------------------------------


def test_a_per_address_sign_in_limit_of_zero_does_not_refuse_every_right_password(make_user, settings) -> None:
    """Finding: SIGNIN_FAILURES_PER_ADDRESS=0 (read as "off") made the address window's limit 0, which every count
    meets: every sign-in from every address, right passwords included, was "Too many wrong passwords from here",
    on /login/ and /admin/login/ alike — the whole workbench locked. The count is at least 1 where it is used, and
    the settings refuse less than 1 at start."""
    settings.SIGNIN_FAILURES_PER_ADDRESS = 0
    user = make_user("moderator", username=f"zero-{uuid.uuid4().hex[:8]}")
    client = Client(REMOTE_ADDR=_address())
    answer = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, answer.content.decode()[:400]
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_the_settings_refuse_a_per_address_sign_in_limit_under_one(monkeypatch, value: str) -> None:
    from workbench.settings import _count_at_least_one

    monkeypatch.setenv("SIGNIN_FAILURES_PER_ADDRESS", value)
    with pytest.raises(ImproperlyConfigured, match="SIGNIN_FAILURES_PER_ADDRESS=.* must be at least 1"):
        _count_at_least_one("SIGNIN_FAILURES_PER_ADDRESS", 100)
    monkeypatch.setenv("SIGNIN_FAILURES_PER_ADDRESS", "7")
    assert _count_at_least_one("SIGNIN_FAILURES_PER_ADDRESS", 100) == 7


def test_a_wrong_password_is_never_given_back_also_when_the_right_one_follows(make_user, settings) -> None:
    """Probe (held): a wrong password stays counted against the address; the right password after it gives back
    only its own try and clears the account's count, never the address's (else a guesser's own account would
    reset it). With a per-address limit of 2, two wrong passwords on two accounts pause the address even though a
    right password came between."""
    settings.SIGNIN_FAILURES_PER_ADDRESS = 2
    mine, theirs = (make_user("moderator", username=f"gb-{uuid.uuid4().hex[:8]}") for _ in range(2))
    here = _address()
    Client(REMOTE_ADDR=here).post("/login/", {"username": theirs.username, "password": "guess-1"})
    assert (
        Client(REMOTE_ADDR=here).post("/login/", {"username": mine.username, "password": PASSWORD}).status_code == 302
    )
    Client(REMOTE_ADDR=here).post("/login/", {"username": theirs.username, "password": "guess-2"})
    refused = Client(REMOTE_ADDR=here).post("/login/", {"username": mine.username, "password": PASSWORD})
    assert "Too many wrong passwords from here" in refused.content.decode()


# --- RoleBackend and the former backend's sessions ----------------------------------------------------------------


def test_a_session_naming_any_other_backend_is_signed_out_and_a_former_one_of_a_deactivated_user_too(
    make_user,
) -> None:
    """Probe (held): a session whose backend is a path the settings do not name (a module of ours, a made-up one) is
    signed out, not moved to RoleBackend (only ModelBackend's exact path is); a ModelBackend session of a user
    deactivated since is moved and still signed out (RoleBackend refuses an inactive user); a user whose role is
    taken away mid-session loses its pages on the next request."""
    user = make_user("moderator")
    home = reverse("moderation:queue")
    for path in ("workbench.middleware.FormerBackendSessionMiddleware", "os.system", ""):
        client = Client()
        client.force_login(user)
        session = client.session
        session[BACKEND_SESSION_KEY] = path
        session.save()
        assert client.get(home).status_code == 302, path  # to the sign-in page

    client = Client()
    client.force_login(user)
    assert client.get(home).status_code == 200
    user.groups.clear()  # the role taken away while signed in
    assert client.get(home).status_code == 403

    former = Client()
    former.force_login(make_user("moderator"), backend="django.contrib.auth.backends.ModelBackend")
    type(user).objects.filter(pk=int(former.session["_auth_user_id"])).update(is_active=False)
    assert former.get(home).status_code == 302


# --- an evaluation file swapped for a symlink between its start and its worker ------------------------------------


def test_an_evaluation_file_swapped_for_a_symlink_out_of_the_import_folders_after_its_start_is_not_read(
    policy_version, make_user, tmp_path, settings
) -> None:
    """Finding: the start confines the evaluation file to MEDIA_IMPORT_ROOTS, and the worker (since this session
    it hashes the file) read the path later, following symlinks: a file in a platform's import folder, which the
    platform writes, swapped for a symlink after the start led the evaluation — its items, its key, the release
    gate's comparison — to any file the worker could read. The worker confines the path again: the run fails saying
    why, and the file outside is never opened."""
    from moderation.inference.services import model_version_serving
    from training.evaluation import evaluation_execute, evaluation_start

    roots, elsewhere = tmp_path / "imports", tmp_path / "elsewhere"
    (roots / "integration-1").mkdir(parents=True)
    elsewhere.mkdir()
    settings.MEDIA_IMPORT_ROOTS = [str(roots)]
    row = {"pid": "1", "tag": "正向", "title": "cooking noodles", "OCR": "null", "ASR": "null", "images": []}
    path = roots / "integration-1" / "held-out.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    secret = elsewhere / "other.jsonl"
    secret.write_text(json.dumps({**row, "pid": "secret"}, ensure_ascii=False), encoding="utf-8")
    run = evaluation_start(
        model_version=model_version_serving(),
        created_by=make_user("admin"),
        eval_set="kuaimod_file",
        file_path=str(path),
    )

    path.unlink()
    path.symlink_to(secret)  # the platform's swap, before the worker picks the run up
    done = evaluation_execute(run_id=run.pk)
    assert done is not None and done.status == "failed"
    assert "outside the import folders" in done.error and done.n_items in (0, None)
    assert "kuaimod_file:held-out.jsonl::" in done.eval_set_key  # no digest: the file elsewhere was never hashed
