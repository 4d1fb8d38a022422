"""What the eighteenth role walk through the running app (`manage.py up`, the demo videos, 100 imported KuaiMod
records decided by the serving model) found that the server draws (the browser half is in
tests/moderation/tagging/test_tag_browser.py: the tag search under the sticky submit row)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from moderation.integrations.models import Integration, WebhookEndpoint
from moderation.integrations.services import integration_create


def _text(html: str) -> str:
    text = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())
    return text.replace(" ,", ",").replace("( ", "(").replace(" )", ")")


def test_who_manages_integrations_without_a_role_gets_an_integrations_home(client, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked as an integration manager (the permission "Manage integrations" given alone, no group): the header
    offered Integrations and Operations, the home page said "Your account has no role yet: ask an admin to add you to
    the moderator, labeler, policy editor or admin group." — a dead end for someone whose work is there."""
    manager = make_user(None)
    manager.user_permissions.add(Permission.objects.get(codename="manage_integrations"))
    client.force_login(manager)

    empty = client.get(reverse("home")).content.decode()
    assert "has no role yet" not in empty
    assert 'id="home-integrations"' in empty and "No platform is connected yet" in empty

    on, _ = integration_create(name="shortvid")
    off, _ = integration_create(name="old-platform")
    Integration.objects.filter(pk=off.pk).update(is_active=False, token_expires_at=timezone.now() - timedelta(days=1))
    Integration.objects.filter(pk=on.pk).update(token_expires_at=timezone.now() + timedelta(days=10))
    WebhookEndpoint.objects.create(integration=on, url="https://a.example/h", secret="s", event_types=["label.final"])
    WebhookEndpoint.objects.create(
        integration=on, url="https://b.example/h", secret="s", event_types=["label.final"], is_active=False
    )
    html = client.get(reverse("home")).content.decode()
    panel = _text(html.split('id="home-integrations"', 1)[1].split("</section>", 1)[0])
    assert "Platforms 2 (1 switched on)" in panel, panel
    assert "1 expired, 1 expiring" in panel, panel
    assert "Webhook endpoints 2 (1 disabled)" in panel, panel
    assert reverse("moderation:integration_list") in html and reverse("moderation:ops_dashboard") in html

    # Other roles see no such panel; the admin (who manages integrations too) does.
    assert 'id="home-integrations"' not in _home_of(make_user("moderator"))
    assert 'id="home-integrations"' in _home_of(make_user("admin"))


def _home_of(user) -> str:  # type: ignore[no-untyped-def]
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.get(reverse("home")).content.decode()


def test_the_integrations_page_names_the_import_folders_in_full_or_says_there_are_none(  # type: ignore[no-untyped-def]
    client_as, settings, tmp_path
) -> None:
    """Walked as the integration manager on a server with no MEDIA_IMPORT_ROOTS: the integration read "imports by
    path from integration-1/ in the import folders only", while the API answered the platform's path import "Server-side
    import is disabled: set MEDIA_IMPORT_ROOTS …"; with folders set, the page never said which (the manager puts the
    platform's files there)."""
    integration, _ = integration_create(name="shortvid")
    client = client_as("admin")
    url = reverse("moderation:integration_list")

    settings.MEDIA_IMPORT_ROOTS = []
    line = _text(client.get(url).content.decode())
    assert "in the import folders only" not in line
    assert "no imports by path (no import folder is set on the server, MEDIA_IMPORT_ROOTS: it sends the files)" in line

    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path / "drop"), str(tmp_path / "nfs") + "/"]
    line = _text(client.get(url).content.decode())
    folder = f"integration-{integration.pk}"
    assert f"imports by path from {tmp_path}/drop/{folder}/, {tmp_path}/nfs/{folder}/ only" in line, line


def test_a_text_only_item_offers_no_reveal_media(make_user, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as a moderator on the imported KuaiMod records (title, OCR and ASR, no file, no keyframes): the review
    screen said "No media file: a text-only item … No keyframes." and offered "Reveal media r" under it, and the tag
    screen offered it above the item's text: a button (and a key) that shows nothing, on most of the day's items."""
    from django.test import Client

    from moderation.review.services import review_claim_next
    from tests.factories import ReviewTaskFactory, TagTaskFactory

    text_only = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file="")
    with_file = ReviewTaskFactory(decision__policy_version=policy_version)
    pages = {}
    for _ in range(2):  # one item held at a time: two moderators, one item each
        moderator = make_user("moderator")
        client = Client()
        client.force_login(moderator)
        task = review_claim_next(user=moderator, queue=text_only.queue)
        assert task is not None
        pages[task.pk] = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "No media file: a text-only item" in pages[text_only.pk]
    assert "data-reveal-toggle" not in pages[text_only.pk]
    assert "data-reveal-toggle" in pages[with_file.pk]  # a video's media is still shielded until revealed

    tag_item = TagTaskFactory(decision__policy_version=policy_version, suggestions=[("美食", 0.5)])
    moderator = make_user("moderator")
    client.force_login(moderator)
    assert review_claim_next(user=moderator, queue=tag_item.queue) == tag_item
    html = client.get(reverse("moderation:tag_task", args=[tag_item.pk])).content.decode()
    assert 'id="tag-video"' in html and "data-reveal-toggle" not in html


def test_a_second_labeler_is_led_to_the_next_correction_waiting_for_their_review(make_user, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the second labeler (the admin) from "Corrections waiting for a second labeler": after Accept the
    screen stayed on the accepted correction, now an edit form, with only "Next not corrected yet: decision #101" —
    the next decision to write a correction for, not the next correction waiting for this reviewer, which only the
    list (filtered again) found."""
    from django.test import Client

    from tests.factories import CotCorrectionFactory, DecisionFactory

    author = make_user("labeler")
    older = CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version), author=author)
    newer = CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version), author=author)
    reviewer = Client()
    reviewer.force_login(make_user("labeler"))

    def next_to_review(decision_id: int, *, follow_from=None) -> str:  # type: ignore[no-untyped-def]
        url = reverse("annotation:correction_edit", args=[decision_id])
        html = (follow_from or reviewer.get(url)).content.decode()
        return (
            _text(html.split('id="next-to-review"', 1)[1].split("</p>", 1)[0]) if 'id="next-to-review"' in html else ""
        )

    line = next_to_review(newer.decision_id)
    assert f"decision #{older.decision_id}" in line and f"revision {older.revision} by {author}" in line, line

    accepted = reviewer.post(
        reverse("annotation:correction_review", args=[newer.decision_id]),
        {"action": "accept", "base_revision": newer.revision},
        follow=True,
    )
    assert f"Accepted revision {newer.revision}: " in accepted.content.decode()
    assert f"decision #{older.decision_id}" in next_to_review(newer.decision_id, follow_from=accepted)

    reviewer.post(
        reverse("annotation:correction_review", args=[older.decision_id]),
        {"action": "accept", "base_revision": older.revision},
    )
    assert next_to_review(older.decision_id) == ""  # nothing else waits for this reviewer
    # The author is never sent to review their own corrections.
    author_client = Client()
    author_client.force_login(author)
    newest = CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version), author=author)
    html = author_client.get(reverse("annotation:correction_edit", args=[older.decision_id])).content.decode()
    assert 'id="next-to-review"' not in html
    assert f"decision #{newest.decision_id}" in next_to_review(older.decision_id)


def test_an_active_stage_1_can_be_switched_off_from_the_cascade_dashboard(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: "Train stage 1 from the labels collected so far" trained on the 101 labelled items and
    "made active" — it auto-decided 6 % of new items from then on, which the button had not said — and nothing on
    the dashboard (nor the Django admin) switched it off again: only the shell could."""
    from moderation.inference.cascade_models import CascadeModel

    model = CascadeModel.objects.create(
        name="stage1", artifact_path="models/stage1.joblib", escalate_threshold=0.57, is_active=True, trained_on=101
    )
    client = client_as("admin")
    page = client.get(reverse("moderation:cascade")).content.decode()
    assert 'id="train-makes-active"' in page and "becomes the active stage 1" in page
    assert reverse("moderation:cascade_off") in page and "Switch stage 1 off" in page

    done = client.post(reverse("moderation:cascade_off"), follow=True).content.decode()
    assert "Stage 1 “stage1” is switched off: every item goes straight to the serving model." in done
    model.refresh_from_db()
    assert not model.is_active and not CascadeModel.objects.filter(is_active=True).exists()
    assert "No stage-1 model is active" in done and "Switch stage 1 off" not in done
    again = client.post(reverse("moderation:cascade_off"), follow=True).content.decode()
    assert "No stage-1 model is active: train one first." in again  # a second click (another tab) is told, no 500


def test_an_evaluations_measures_are_listed_in_a_reading_order(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin on evaluation 1 (the gold set, 101 items): the measures came in the order PostgreSQL's
    jsonb keeps keys (shortest first): "Binary accuracy", "Format validity", "Strict accuracy", "Violation recall",
    "Label accuracy", "Non-violation recall", "Violation precision", "Binary accuracy, 95% interval", "Non-violation
    precision" — each class's precision far from its recall, the interval far from its accuracy."""
    from tests.factories import ModelVersionFactory
    from training.models import EvaluationRun

    metrics = {
        "n": 101,
        "n_violative": 47,
        "prompts_cut": 0,
        "binary_accuracy": 0.604,
        "format_validity": 1.0,
        "strict_accuracy": 0.594,
        "violative_recall": 0.149,
        "multiclass_accuracy": 0.594,
        "nonviolative_recall": 1.0,
        "violative_precision": 1.0,
        "binary_accuracy_ci95": [0.506, 0.694],
        "nonviolative_precision": 0.574,
        "a_measure_added_later": 0.5,
    }
    run = EvaluationRun.objects.create(
        model_version=ModelVersionFactory(),
        policy_version=policy_version,
        eval_set_key="gold",
        status=EvaluationRun.Status.SUCCEEDED,
        metrics=metrics,
    )
    page = _text(client_as("admin").get(reverse("training:evaluation_detail", args=[run.pk])).content.decode())
    order = [
        "Items evaluated 101",
        "Violative items 47",
        "Binary accuracy (violation or not) 0.604",
        "Binary accuracy, 95% interval 0.506 – 0.694",
        "Label accuracy (exact label) 0.594",
        "Strict accuracy (exact label, well-formed output) 0.594",
        "Format validity (outputs that parse) 1.000",
        "Violation precision 1.000",
        "Violation recall 0.149",
        "Non-violation precision 0.574",
        "Non-violation recall 1.000",
        "Items whose prompt was cut to fit the model's context 0",
        "A measure added later 0.500",  # a key the screen has no words for yet comes last, not lost
    ]
    places = [page.find(row) for row in order]
    # Walk 18 too: each major category's recall named in English beside its key, as the policy's taxonomy names it.
    run.per_category = {"major_recall": {"法律与社会安全": 0.333, "内容质量与伦理": 0.0}}
    run.save(update_fields=["per_category"])
    with_categories = _text(
        client_as("admin").get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    )
    assert "法律与社会安全 Law & social safety 0.333" in with_categories, with_categories
    assert "内容质量与伦理 Content quality & ethics 0.000" in with_categories
    assert all(place >= 0 for place in places), [row for row, place in zip(order, places, strict=True) if place < 0]
    assert places == sorted(places), page


def test_a_text_only_items_page_does_not_promise_keyframes_nor_weigh_a_file(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin on an imported KuaiMod record's page (video #2): "This item has no media file (text only)."
    then "Keyframes (0) … No keyframes yet." — as if they were on their way — and "Uploaded … · kuaimod:000.jsonl ·
    0 bytes", the size of a file that does not exist."""
    from tests.factories import DecisionFactory

    decision = DecisionFactory(
        policy_version=policy_version, video__file="", video__original_filename="kuaimod:000.jsonl", video__size_bytes=0
    )
    page = _text(client_as("admin").get(reverse("moderation:video_detail", args=[decision.video_id])).content.decode())
    assert "This item has no media file (text only)." in page
    assert "No keyframes yet." not in page and "None: a text-only item has no picture to take them from." in page
    assert "kuaimod:000.jsonl · text only, no file" in page and "0 bytes" not in page

    with_file = DecisionFactory(policy_version=policy_version)  # a video still says its size
    page = _text(client_as("admin").get(reverse("moderation:video_detail", args=[with_file.video_id])).content.decode())
    assert "text only, no file" not in page and "bytes" in page


def test_the_labelers_home_counts_their_own_corrections_waiting_apart_from_those_to_review(  # type: ignore[no-untyped-def]
    make_user, policy_version
) -> None:
    """Walked as the labeler: right after "Submitted revision 1 for review … another labeler accepts or rejects it
    next", the home page said "Corrections waiting for a second labeler: 0" — it counts only others' corrections, so
    the one just sent seemed to have gone nowhere."""
    from django.test import Client

    from tests.factories import CotCorrectionFactory, DecisionFactory

    me, colleague = make_user("labeler"), make_user("labeler")
    CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version), author=me)
    for _ in range(2):
        CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version), author=colleague)
    client = Client()
    client.force_login(me)
    panel = _text(client.get(reverse("home")).content.decode().split('id="home-labeling"', 1)[1].split("</section>")[0])
    assert "Others' corrections waiting for your review 2" in panel, panel
    assert "Yours waiting for a second labeler 1" in panel, panel
    assert "Corrections waiting for a second labeler" not in panel
    mine = client.get(reverse("annotation:correction_list") + "?status=submitted&by=me").content.decode()
    assert mine.count(">Edit</a>") == 1  # the list the count opens holds that one correction


def test_a_tag2cot_tasks_first_draft_says_what_it_holds(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the labeler after "Queued 41 new Tag2CoT tasks": every row's "Draft" column read "Evidence baseline
    extraction", and the task's page "draft: Evidence baseline extraction" — a name, not what was written for them
    (only the content-extraction stage is filled in; the reasoning to the human label is theirs to write)."""
    from annotation.models import Tag2CotTask
    from tests.factories import DecisionFactory

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    task = Tag2CotTask.objects.create(
        video=decision.video,
        decision=decision,
        policy_version=policy_version,
        target_label="引导私下交易",
        draft_source=Tag2CotTask.DraftSource.BASELINE,
        draft_model="evidence_baseline",
    )
    client = client_as("labeler")
    listed = _text(client.get(reverse("annotation:tag2cot_list")).content.decode())
    page = _text(client.get(reverse("annotation:tag2cot_write", args=[task.pk])).content.decode())
    assert "First draft" in listed and "content extraction filled in (evidence baseline)" in listed
    assert "first draft: content extraction filled in (evidence baseline)" in page
    assert "Evidence baseline extraction" not in listed + page
