"""The impact preview re-runs the baseline under a draft and reports flips without writing decisions."""

from __future__ import annotations

import copy
import re

import pytest
from django.urls import reverse

from moderation.inference.impact import policy_impact_preview
from moderation.inference.models import Decision
from moderation.policies.services import policy_version_create_draft
from tests.factories import DecisionFactory, PolicyVersionFactory, SegmentFactory, VideoFactory

pytestmark = pytest.mark.django_db

PRIVATE_DEALS = "引导私下交易"


def _draft_with_keyword(policy_version, editor, keyword: str):  # type: ignore[no-untyped-def]
    taxonomy = copy.deepcopy(policy_version.taxonomy)
    tag = next(t for c in taxonomy for t in c["tags"] if t["key"] == PRIVATE_DEALS)
    tag["keywords"].append(keyword)
    return policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor)


def _decided(policy_version, text: str, label: str = "正向"):  # type: ignore[no-untyped-def]
    video = VideoFactory()
    SegmentFactory(video=video, text=text)
    DecisionFactory(video=video, policy_version=policy_version, label=label)
    return video


def test_a_keyword_added_by_the_draft_flips_the_item_that_says_it(policy_version, make_user):
    flipping = _decided(policy_version, "ping me on signal for the real price")
    unchanged_safe = _decided(policy_version, "a quiet walk by the river")
    unchanged_violation = _decided(policy_version, "add me on wechat to order", label=PRIVATE_DEALS)
    editor = make_user("policy_editor")
    draft = _draft_with_keyword(policy_version, editor, "signal")
    decisions_before = list(Decision.objects.order_by("pk").values())

    preview = policy_impact_preview(draft=draft, user=editor, sample_size=200)

    assert preview.active == policy_version and preview.checked == 3
    assert [(f.video_id, f.old_label, f.new_label) for f in preview.flips] == [(flipping.pk, "正向", PRIVATE_DEALS)]
    assert preview.flips[0].recorded_label == "正向" and preview.flips[0].new_name == "Steering users to private deals"
    counts = {row.label: (row.before, row.after, row.delta) for row in preview.label_counts}
    assert counts == {"正向": (2, 1, -1), PRIVATE_DEALS: (1, 2, 1)}
    assert {unchanged_safe.pk, unchanged_violation.pk}.isdisjoint(f.video_id for f in preview.flips)
    assert list(Decision.objects.order_by("pk").values()) == decisions_before  # nothing written


def test_the_sample_is_the_newest_items_under_the_active_version_only(policy_version, make_user):
    older = _decided(policy_version, "ping me on signal")
    newer = _decided(policy_version, "ping me on signal today")
    other_policy_version = PolicyVersionFactory(policy__slug="other", policy__name="Other")
    _decided(other_policy_version, "ping me on signal too")  # decided under another policy: not sampled
    editor = make_user("policy_editor")
    draft = _draft_with_keyword(policy_version, editor, "signal")

    preview = policy_impact_preview(draft=draft, user=editor, sample_size=1)

    assert preview.checked == 1 and [f.video_id for f in preview.flips] == [newer.pk]
    assert older.pk not in [f.video_id for f in preview.flips]


def test_right_after_a_publish_the_other_drafts_still_preview_on_the_items_decided_before(policy_version, make_user):
    """The sample was only items decided under the active version: once a draft was published, every other
    draft's preview said "No items have been decided under the active version v2 yet" until new ones came."""
    from moderation.policies.services import policy_version_publish

    flipping = _decided(policy_version, "ping me on signal for the real price")
    editor = make_user("policy_editor")
    published = _draft_with_keyword(policy_version, editor, "telegram-only")
    other = _draft_with_keyword(policy_version, editor, "signal")
    policy_version_publish(version=published, by=editor)

    preview = policy_impact_preview(draft=other, user=editor)

    assert preview.active == published and preview.checked == 1
    assert [(f.video_id, f.recorded_label, f.new_label) for f in preview.flips] == [
        (flipping.pk, "正向", PRIVATE_DEALS)
    ]


def test_impact_page_lists_flips_with_links_for_editors_only(policy_version, make_user, client_as):
    video = _decided(policy_version, "ping me on signal")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    url = reverse("moderation:policy_version_impact", args=[draft.pk])

    resp = client_as("policy_editor").post(url, {"n": "50"}, HTTP_HX_REQUEST="true")  # running it is a POST
    html = resp.content.decode()
    assert resp.status_code == 200 and "<html" not in html  # the htmx partial only
    assert "<strong>1</strong> of 1 recent item" in html
    assert reverse("moderation:video_detail", args=[video.pk]) in html
    assert f"<strong>{PRIVATE_DEALS}</strong>" in html

    for role in ("moderator", "labeler"):
        assert client_as(role).get(url).status_code == 403
    assert Decision.objects.count() == 1


def test_the_recorded_model_label_shows_its_name_as_the_deciding_version_named_it(policy_version, make_user, client_as):
    """The "Recorded model label" column showed the bare code (引导私下交易) where the others name it: the name is the
    one the version that decided the item gives it, even when the draft renames the tag."""
    video = _decided(policy_version, "ping me on signal", label=PRIVATE_DEALS)
    taxonomy = copy.deepcopy(policy_version.taxonomy)
    tag = next(t for c in taxonomy for t in c["tags"] if t["key"] == PRIVATE_DEALS)
    tag["keywords"].append("signal")
    tag["name"] = "Off-platform deals"
    editor = make_user("policy_editor")
    draft = policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor)

    preview = policy_impact_preview(draft=draft, user=editor)

    assert [(f.video_id, f.recorded_label, f.recorded_name, f.new_name) for f in preview.flips] == [
        (video.pk, PRIVATE_DEALS, "Steering users to private deals", "Off-platform deals")
    ]
    html = client_as("policy_editor").get(reverse("moderation:policy_version_impact", args=[draft.pk])).content.decode()
    row = html.split('<tr class="flip">', 1)[1].split("</tr>", 1)[0]
    assert f'<td>{PRIVATE_DEALS} <small class="hint">Steering users to private deals</small></td>' in row


def test_the_impact_preview_and_the_dataset_form_say_what_their_numbers_count(policy_version, make_user, client_as):
    """Walked: "Sample size [200]" and "Held-out share [0]" named no unit: 200 what, a share of what (0.2 or 20)?"""
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    page = client_as("policy_editor").get(reverse("moderation:policy_version", args=[draft.pk])).content.decode()
    assert re.search(r"<label>Re-run the latest <input [^>]*name=\"n\"[^>]*> items</label>", page), page
    page = client_as("admin").get(reverse("training:job_list")).content.decode()
    assert "of the videos, 0–0.9, kept out of training for evaluation</small></label>" in page


def test_the_publish_step_runs_the_impact_preview_under_its_question(policy_version, make_user, client_as):
    """Walked: an editor previewed the impact, pressed "Publish and make active…", and the page reloaded into the
    confirm step without the preview they had just run: the step now loads it under the question."""
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    editor = client_as("policy_editor")
    url = reverse("moderation:policy_version", args=[draft.pk])
    impact = reverse("moderation:policy_version_impact", args=[draft.pk])
    confirm = editor.get(url, {"confirm": "publish"}).content.decode()
    assert re.search(
        rf'<div id="impact-result" class="impact-pending" hx-post="{impact}" hx-vals=\'{{"n": "\d+"}}\' hx-trigger="load"',
        confirm,
    )
    assert "Running the impact preview on the latest" in confirm  # the box holds its place until the answer lands
    unasked = editor.get(url).content.decode()
    assert 'id="impact-result">' in unasked and "impact-pending" not in unasked  # only when asked to confirm
