"""A draft started from a version that is no longer active: publishing it would undo the active version's changes,
so the publish service refuses it until the editor confirms, and the version page says so and asks."""

from __future__ import annotations

import copy
import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from moderation.errors import ModerationError
from moderation.policies.models import PolicyVersion
from moderation.policies.selectors import policy_draft_staleness
from moderation.policies.services import (
    StalePublishError,
    policy_version_activate,
    policy_version_create_draft,
    policy_version_publish,
)
from moderation.review.models import AuditEvent
from tests.factories import PolicyVersionFactory

pytestmark = pytest.mark.django_db

PRIVATE_DEALS = "引导私下交易"
CRIMINAL = "违法犯罪"


def _with_keyword(taxonomy, tag_key: str, keyword: str):  # type: ignore[no-untyped-def]
    new = copy.deepcopy(taxonomy)
    next(t for c in new for t in c["tags"] if t["key"] == tag_key)["keywords"].append(keyword)
    return new


@pytest.fixture
def editor(make_user):  # type: ignore[no-untyped-def]
    return make_user("policy_editor", username="rubric-editor")


@pytest.fixture
def stale(policy_version, editor):  # type: ignore[no-untyped-def]
    """v1 active; v2 (adds "signal") and v3 (adds "telegram-only") both started from v1; v2 published.
    Returns (v1, v2, v3): v3 is a draft started from v1 while v2 is active."""
    v1 = policy_version
    v2 = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v1.taxonomy, PRIVATE_DEALS, "signal"), by=editor
    )
    v3 = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v1.taxonomy, CRIMINAL, "telegram-only"), by=editor
    )
    v2 = policy_version_publish(version=v2, by=editor)
    return v1, v2, v3


def _active_number(policy_version: PolicyVersion) -> int:
    return PolicyVersion.objects.get(policy_id=policy_version.policy_id, is_active=True).number


def _publish_events() -> list[dict]:
    return list(AuditEvent.objects.filter(action="policy.publish").order_by("pk").values_list("payload", flat=True))


# --- service ------------------------------------------------------------------------------------------------------


def test_a_draft_records_the_version_it_was_started_from(policy_version, editor):
    v1 = policy_version
    v2 = policy_version_create_draft(policy=v1.policy, taxonomy=_with_keyword(v1.taxonomy, CRIMINAL, "x"), by=editor)
    v3 = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v2.taxonomy, CRIMINAL, "y"), by=editor, based_on=v2
    )
    assert (v2.based_on, v3.based_on) == (v1, v2)  # the active version unless the editor opened another

    other = PolicyVersionFactory(policy__slug="other", policy__name="Other")
    with pytest.raises(ModerationError, match="another policy"):
        policy_version_create_draft(policy=v1.policy, taxonomy=v1.taxonomy, by=editor, based_on=other)


def test_an_up_to_date_draft_publishes_in_one_step(policy_version, editor):
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=_with_keyword(policy_version.taxonomy, CRIMINAL, "x"), by=editor
    )
    assert policy_draft_staleness(draft=draft) is None

    published = policy_version_publish(version=draft, by=editor)

    assert (published.status, published.is_active, published.publish_note) == ("published", True, "")
    assert _publish_events() == [
        {
            "policy": policy_version.policy_id,
            "number": draft.number,
            "replaced": policy_version.number,
            "started_from": policy_version.number,
            "replaced_changes_confirmed": False,
        }
    ]


def test_a_stale_draft_is_refused_without_confirmation_and_nothing_changes(stale, editor):
    v1, v2, v3 = stale

    with pytest.raises(StalePublishError) as exc:
        policy_version_publish(version=v3, by=editor)

    message = str(exc.value)
    assert f"v{v3.number} was started from v{v1.number}, and v{v2.number} is active now" in message
    assert f"replaces v{v2.number}'s 1 change since v{v1.number}" in message
    v3.refresh_from_db()
    assert (v3.status, v3.is_active, v3.publish_note) == ("draft", False, "")
    assert _active_number(v1) == v2.number
    assert len(_publish_events()) == 1  # v2's own publish only


def test_a_confirmation_for_another_active_version_is_refused(stale, editor):
    v1, v2, v3 = stale
    with pytest.raises(StalePublishError, match=f"you confirmed replacing v{v1.number}, but v{v2.number} is active"):
        policy_version_publish(version=v3, by=editor, replaces=v1.number)
    assert _active_number(v1) == v2.number


def test_a_confirmed_stale_publish_replaces_the_active_version_and_says_so(stale, editor):
    v1, v2, v3 = stale
    staleness = policy_draft_staleness(draft=v3)
    assert staleness is not None and (staleness.base, staleness.active) == (v1, v2)
    assert [(c.kind, c.tag, c.items) for c in staleness.changes] == [("keywords_added", PRIVATE_DEALS, ("signal",))]

    published = policy_version_publish(
        version=v3, by=editor, replaces=v2.number, reason="  signal is handled by the new messaging rule \x00 "
    )

    assert (published.status, published.is_active) == ("published", True)
    assert _active_number(v1) == v3.number
    note = PolicyVersion.objects.get(pk=v3.pk).publish_note
    assert note.startswith(f"Published over v{v2.number}, which it was not started from (started from v{v1.number})")
    # "1 change ... were replaced" read wrong on the version page: one change was.
    assert f"v{v2.number}'s 1 change since v{v1.number} was replaced. Confirmed by rubric-editor." in note
    assert note.endswith("Reason: signal is handled by the new messaging rule \ufffd")
    event = AuditEvent.objects.filter(action="policy.publish").latest("pk")
    assert (event.actor, event.object_type, event.object_id) == (editor, "policyversion", str(v3.pk))
    assert event.payload == {
        "policy": v1.policy_id,
        "number": v3.number,
        "replaced": v2.number,
        "started_from": v1.number,
        "replaced_changes_confirmed": True,
        "replaced_changes": 1,
        "reason": "signal is handled by the new messaging rule \ufffd",
    }


def test_a_reason_longer_than_the_limit_is_refused(stale, editor):
    _v1, v2, v3 = stale
    with pytest.raises(ModerationError, match="keep it to 1,000"):
        policy_version_publish(version=v3, by=editor, replaces=v2.number, reason="x" * 1001)
    assert PolicyVersion.objects.get(pk=v3.pk).status == "draft"


def test_what_counts_as_up_to_date(stale, editor):
    v1, v2, v3 = stale
    # A draft of a draft carries its parent's edits: started from a draft of v2, it is as fresh as that draft.
    child = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v2.taxonomy, CRIMINAL, "a"), by=editor, based_on=v2
    )
    grandchild = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(child.taxonomy, CRIMINAL, "b"), by=editor, based_on=child
    )
    assert policy_draft_staleness(draft=grandchild) is None
    # ...and a draft of the stale draft is as stale as it.
    nephew = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v3.taxonomy, CRIMINAL, "c"), by=editor, based_on=v3
    )
    stale_nephew = policy_draft_staleness(draft=nephew)
    assert stale_nephew is not None and (stale_nephew.started_from, stale_nephew.base) == (v3, v1)

    # Rolled back to v1: v3, started from v1, is up to date again (and v2's draft-of-draft is not).
    policy_version_activate(version=v1, by=editor)
    assert policy_draft_staleness(draft=v3) is None
    assert policy_draft_staleness(draft=grandchild) is not None


def test_an_active_version_that_changed_nothing_since_the_base_needs_no_confirmation(policy_version, editor):
    v1 = policy_version
    same_as_v1 = policy_version_create_draft(policy=v1.policy, taxonomy=v1.taxonomy, by=editor, notes="re-publish")
    draft = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v1.taxonomy, CRIMINAL, "x"), by=editor, based_on=v1
    )
    policy_version_publish(version=same_as_v1, by=editor)

    assert policy_draft_staleness(draft=draft) is None
    assert policy_version_publish(version=draft, by=editor).is_active


def test_a_draft_without_a_recorded_start_must_be_confirmed_against_the_active_version(policy_version, editor):
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=_with_keyword(policy_version.taxonomy, CRIMINAL, "x"), by=editor
    )
    PolicyVersion.objects.filter(pk=draft.pk).update(based_on=None)
    draft.refresh_from_db()

    with pytest.raises(StalePublishError, match="started from no recorded version"):
        policy_version_publish(version=draft, by=editor)
    stale = policy_draft_staleness(draft=draft)
    assert stale is not None and stale.diff_from == draft  # the diff is the draft against the active version
    assert policy_version_publish(version=draft, by=editor, replaces=policy_version.number).is_active


# --- the migration's backfill -------------------------------------------------------------------------------------


def test_the_migration_gives_old_drafts_the_newest_published_version_below_them(db):
    """Drafts saved before ``based_on`` existed: each gets the newest published version numbered below it. A draft
    older than the active version (v3 below, saved before v4 was) so reads as stale; one newer than it as fresh."""
    migration = importlib.import_module("moderation.migrations.0036_policy_version_based_on")
    v1 = PolicyVersionFactory(number=1, is_active=False)
    policy = v1.policy
    v2 = PolicyVersionFactory(policy=policy, number=2, status="draft", is_active=False)
    v3 = PolicyVersionFactory(policy=policy, number=3, status="draft", is_active=False)
    v4 = PolicyVersionFactory(
        policy=policy, number=4, is_active=True, taxonomy=_with_keyword(v1.taxonomy, CRIMINAL, "x")
    )
    v5 = PolicyVersionFactory(policy=policy, number=5, status="draft", is_active=False)
    lone_draft = PolicyVersionFactory(policy__slug="drafts-only", number=1, status="draft", is_active=False)

    migration.backfill_draft_bases(apps, None)

    bases = dict(PolicyVersion.objects.values_list("pk", "based_on"))
    assert bases == {v1.pk: None, v2.pk: v1.pk, v3.pk: v1.pk, v4.pk: None, v5.pk: v4.pk, lone_draft.pk: None}
    v3.refresh_from_db()
    v5.refresh_from_db()
    assert policy_draft_staleness(draft=v3) is not None and policy_draft_staleness(draft=v5) is None


# --- the version page ---------------------------------------------------------------------------------------------


def test_the_stale_draft_page_warns_shows_the_active_changes_and_publishes_only_after_confirming(stale, client_as):
    v1, v2, v3 = stale
    client = client_as("policy_editor")
    page_url = reverse("moderation:policy_version", args=[v3.pk])
    publish_url = reverse("moderation:policy_version_publish", args=[v3.pk])

    html = client.get(page_url).content.decode()
    assert f"Started from v{v1.number}; v{v2.number} is active now: publishing replaces v{v2.number}'s changes" in html
    assert f"What v{v2.number} changed since v{v1.number}" in html
    assert "Keywords added" in html and "<ins>signal</ins>" in html
    assert f'{PRIVATE_DEALS}<br><small class="hint">Steering users to private deals</small>' in html
    assert "Publish and make active" not in html  # no one-click publish
    assert f"Publish, replacing v{v2.number}…" in html and 'name="replaces"' not in html

    # The old one-click form (a page opened before v2 was published) publishes nothing: it opens the confirm step.
    resp = client.post(publish_url, follow=True)
    assert resp.status_code == 200 and resp.redirect_chain == [(f"{page_url}?confirm=publish", 302)]
    assert f'<input type="checkbox" name="replaces" value="{v2.number}" required>' in resp.content.decode()
    assert _active_number(v1) == v2.number
    # A confirm step sent without its box ticked (a browser that does not check "required") is refused there.
    unticked = client.post(publish_url, {"confirm": "publish"})
    assert (
        unticked.status_code == 400
        and f"Not published: v{v3.number} was started from v{v1.number}"
        in (unticked.content.decode().split('id="publish-confirm"')[1])
    )
    assert _active_number(v1) == v2.number

    confirm = client.get(page_url, {"confirm": "publish"}).content.decode()
    assert f'<input type="checkbox" name="replaces" value="{v2.number}" required>' in confirm
    assert f"Publish v{v3.number}, replacing v{v2.number}" in confirm

    resp = client.post(
        publish_url,
        {"replaces": str(v2.number), "reason": "the signal keyword moved to the messaging rule", "notes": "telegram"},
        follow=True,
    )
    html = resp.content.decode()
    assert resp.status_code == 200 and f"v{v3.number} is published and active" in html
    assert _active_number(v1) == v3.number
    page = client.get(page_url).content.decode()
    assert f"Published over v{v2.number}, which it was not started from" in page
    assert "Reason: the signal keyword moved to the messaging rule" in page


def test_readers_see_the_warning_but_no_publish_step(stale, client_as):
    _v1, v2, v3 = stale
    html = client_as("moderator").get(reverse("moderation:policy_version", args=[v3.pk]), {"confirm": "publish"})
    text = html.content.decode()
    assert f"v{v2.number} is active now" in text
    assert "Publish, replacing" not in text and 'name="replaces"' not in text and "Publish and make" not in text


def test_an_up_to_date_draft_publishes_only_from_a_confirm_step_that_names_the_version_it_replaces(
    policy_version, editor, client_as
):
    """ "Publish and make active" acted at once, though it changes what every reviewer and the model use:
    now it opens a confirm step (a form, no JavaScript) naming the version replaced; so does "Make active again"."""
    import re

    v1 = policy_version
    draft = policy_version_create_draft(policy=v1.policy, taxonomy=_with_keyword(v1.taxonomy, CRIMINAL, "x"), by=editor)
    client = client_as("policy_editor")
    page_url = reverse("moderation:policy_version", args=[draft.pk])
    publish_url = reverse("moderation:policy_version_publish", args=[draft.pk])

    page = client.get(page_url).content.decode()
    assert "is active now" not in page and "started from <a" in page and 'name="replaces"' not in page
    opener = re.search(r'<form method="get" action="([^"]+)" class="inline">\s*<input type="hidden" name="confirm" '
                       r'value="publish">\s*<button type="submit">Publish and make active…</button>', page)  # fmt: skip
    assert opener is not None and opener.group(1) == page_url

    # A publish sent without the step (an old page, a script) changes nothing and opens the step.
    resp = client.post(publish_url)
    assert resp.status_code == 302 and resp["Location"] == f"{page_url}?confirm=publish"
    assert _active_number(v1) == v1.number

    step = client.get(page_url, {"confirm": "publish"}).content.decode()
    form = step.split('id="publish-confirm"')[1].split("</form>")[0]
    assert f"Publish v{draft.number}, replacing v{v1.number}?</h2>" in form and "autofocus" in form
    assert f'<input type="hidden" name="replaces" value="{v1.number}">' in form
    assert f"instead of v{v1.number}'s" in form and "stay pinned to the version they were made under" in form
    assert f'<button type="submit" class="danger">Publish v{draft.number}, replacing v{v1.number}</button>' in form
    assert f'<a href="{page_url}">Cancel</a>' in form and "Publish and make active…" not in step

    # Another editor publishes a version meanwhile: the confirmed publish is refused in the step, which now
    # names the version active now.
    other = policy_version_create_draft(policy=v1.policy, taxonomy=v1.taxonomy, by=editor, based_on=v1)
    policy_version_publish(version=other, by=editor)
    raced = client.post(publish_url, {"confirm": "publish", "replaces": str(v1.number), "notes": "x keyword"})
    assert raced.status_code == 400
    form = raced.content.decode().split('id="publish-confirm"')[1].split("</form>")[0]
    assert f"you confirmed replacing v{v1.number}, but v{other.number} is active now" in form
    assert _active_number(v1) == other.number

    done = client.post(
        publish_url, {"confirm": "publish", "replaces": str(other.number), "notes": "x keyword"}, follow=True
    )
    assert f"v{draft.number} is published and active" in done.content.decode()
    assert _active_number(v1) == draft.number

    # Making an earlier version active again has its step too.
    back_url = reverse("moderation:policy_version", args=[v1.pk])
    activate_url = reverse("moderation:policy_version_activate", args=[v1.pk])
    assert "Make active again…" in client.get(back_url).content.decode()
    resp = client.post(activate_url)
    assert resp.status_code == 302 and resp["Location"] == f"{back_url}?confirm=activate"
    assert _active_number(v1) == draft.number
    step = client.get(back_url, {"confirm": "activate"}).content.decode()
    assert f"Make v{v1.number} active again, replacing v{draft.number}?</h2>" in step
    client.post(activate_url, {"confirm": "activate", "replaces": str(draft.number)})
    assert _active_number(v1) == v1.number
    # A reader gets no step, whatever the address says.
    reader = client_as("moderator").get(page_url, {"confirm": "publish"}).content.decode()
    assert 'id="publish-confirm"' not in reader


def test_the_editor_records_the_version_it_opened_and_warns_when_it_is_not_active(stale, client_as):
    from tests.moderation.policies.test_policy_editor_views import _structured_post

    v1, v2, _v3 = stale
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[v1.policy_id])
    page = client.get(url, {"from": v1.pk}).content.decode()
    assert f"v{v2.number} is the active version, not v{v1.number}" in page
    assert f"v{v2.number} is the active version" not in client.get(url).content.decode()

    resp = client.post(url, _structured_post(_with_keyword(v1.taxonomy, CRIMINAL, "dice"), base=str(v1.pk)))
    draft = PolicyVersion.objects.latest("number")
    assert resp.status_code == 302 and draft.based_on == v1
    assert policy_draft_staleness(draft=draft) is not None


def test_the_policy_page_marks_the_drafts_behind_the_active_version(stale, editor, client_as):
    v1, v2, v3 = stale
    fresh = policy_version_create_draft(
        policy=v1.policy, taxonomy=_with_keyword(v2.taxonomy, CRIMINAL, "dice"), by=editor
    )
    html = client_as("moderator").get(reverse("moderation:policy_detail", args=[v1.policy_id])).content.decode()
    rows = {
        row.split('">v', 1)[1].split("<", 1)[0]: row for row in html.split("<tr>")[1:] if "policies/versions/" in row
    }
    marker = f"started from v{v1.number}; v{v2.number} is active now: publishing replaces v{v2.number}'s changes"
    assert marker in rows[str(v3.number)]
    assert "is active now" not in rows[str(fresh.number)] and "is active now" not in rows[str(v1.number)]


def test_a_confirm_step_overtaken_by_another_publish_keeps_the_typed_reason(stale, editor, client_as):
    # The editor confirmed replacing v2, but v4 was published meanwhile: the refusal went back to the version's
    # top with a message and the reason they had typed was gone; it now stays in the confirm step, for v4.
    v1, v2, v3 = stale
    v4 = policy_version_publish(
        version=policy_version_create_draft(policy=v1.policy, taxonomy=v2.taxonomy, by=editor, based_on=v2),
        by=editor,
    )
    client = client_as("policy_editor")
    publish_url = reverse("moderation:policy_version_publish", args=[v3.pk])

    resp = client.post(publish_url, {"replaces": str(v2.number), "reason": "signal moved to the messaging rule"})

    assert resp.status_code == 400
    form = resp.content.decode().split('id="publish-confirm"')[1].split("</form>")[0]
    assert f"you confirmed replacing v{v2.number}, but v{v4.number} is active now" in form
    assert ">signal moved to the messaging rule</textarea>" in form
    assert f'name="replaces" value="{v4.number}" required autofocus' in form
    assert _active_number(v1) == v4.number


def test_making_a_version_active_again_is_refused_when_another_became_active_since_its_confirm_step(
    stale, editor, client_as
):  # type: ignore[no-untyped-def]
    """The step read "Make v1 active again, replacing v2?"; meanwhile another editor published v3. Confirming
    made v1 active over v3, which the editor never saw. Now the service refuses (as publishing does), the step
    comes back naming v3 with the reason, and nothing changes until the editor confirms again."""
    v1, v2, v3 = stale
    client = client_as("policy_editor")
    page_url = reverse("moderation:policy_version", args=[v1.pk])
    activate_url = reverse("moderation:policy_version_activate", args=[v1.pk])
    step = client.get(page_url, {"confirm": "activate"}).content.decode()
    assert f'name="replaces" value="{v2.number}"' in step

    policy_version_publish(version=v3, by=editor, replaces=v2.number)  # another editor, meanwhile
    raced = client.post(activate_url, {"confirm": "activate", "replaces": str(v2.number)})

    assert raced.status_code == 400 and _active_number(v1) == v3.number
    form = raced.content.decode().split('id="publish-confirm"')[1].split("</form>")[0]
    assert (
        f"Not made active: you confirmed replacing v{v2.number}, but v{v3.number} is active now. "
        f"Read what making v{v1.number} active replaces now and confirm again."
    ) in form
    assert f'name="replaces" value="{v3.number}"' in form and 'role="alert"' in form
    assert not AuditEvent.objects.filter(action="policy.activate").exists()
    with pytest.raises(ModerationError, match=f"but v{v3.number} is active now"):
        policy_version_activate(version=v1, by=editor, replaces=v2.number)

    done = client.post(activate_url, {"confirm": "activate", "replaces": str(v3.number)}, follow=True)
    assert f"v{v1.number} is active again" in done.content.decode() and _active_number(v1) == v1.number
    assert AuditEvent.objects.get(action="policy.activate").payload["replaced"] == v3.number


def test_back_after_publishing_never_shows_the_cached_draft_page(client_as, make_user, policy_version):
    """Walked: Back after "Publish vN, replacing vM" showed the browser's copy of the draft page ("Draft", "Publish
    and make active…") of a version already active. The policy and version pages are never stored by the browser,
    so Back loads them as they are now."""
    draft = policy_version_create_draft(
        policy=policy_version.policy,
        taxonomy=copy.deepcopy(policy_version.taxonomy),
        by=make_user("policy_editor"),
        notes="walk",
    )
    client = client_as("policy_editor")
    for url in (
        reverse("moderation:policy_version", args=[draft.pk]) + "?confirm=publish",
        reverse("moderation:policy_version", args=[draft.pk]),
        reverse("moderation:policy_detail", args=[policy_version.policy_id]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"], url
