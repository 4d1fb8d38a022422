"""The review screens as a reviewer uses them."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation.media.models import Keyframe
from moderation.review.models import Review, ReviewTask
from moderation.review.services import review_claim_next, review_submit
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def _login(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_queue_requires_review_permission(client_as):
    assert Client().get(reverse("moderation:queue")).status_code == 302
    assert Client().get(reverse("moderation:queue"))["Location"].startswith("/login/")
    assert client_as("labeler").get(reverse("moderation:queue")).status_code == 403
    assert client_as("labeler").post(reverse("moderation:claim_next")).status_code == 403
    assert client_as("moderator").get(reverse("moderation:queue")).status_code == 200


def test_queue_shows_counts_and_claim_shortcut(make_task, client_as):
    make_task()
    make_task(status=ReviewTask.Status.DONE)
    resp = client_as("moderator").get(reverse("moderation:queue"))
    html = resp.content.decode()
    assert '<td data-stat="pending">1</td>' in html
    assert '<td data-stat="done">1</td>' in html
    assert 'data-hotkey="n"' in html and "<kbd>n</kbd>" in html
    partial = client_as("moderator").get(reverse("moderation:queue"), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="queue-stats"' in partial and "<html" not in partial


def test_claim_next_opens_the_item_and_empty_queue_says_so(make_task, make_user):
    task = make_task()
    client = _login(make_user("moderator"))
    resp = client.post(reverse("moderation:claim_next"))
    assert resp["Location"] == reverse("moderation:review_task", args=[task.pk])

    other = _login(make_user("moderator"))
    resp = other.post(reverse("moderation:claim_next"), follow=True)
    assert resp.redirect_chain[-1][0] == reverse("moderation:queue")
    assert "Queue is empty" in resp.content.decode()


def test_review_screen_shows_media_verdict_cot_and_shortcuts(make_task, make_user):
    task = make_task(
        decision__label="引导私下交易",
        decision__is_violation=True,
        decision__confidence=0.87,
        decision__cot=[
            {
                "key": "content_extraction",
                "title": "Content extraction",
                "text": "Speaker asks to add WeChat.",
                "evidence": [{"kind": "segment", "ref": 1, "label": "add me on wechat", "t": 2.5}],
            },
            {"key": "analysis", "title": "Analysis", "text": "QR code on screen.", "evidence": "KEYFRAME"},
            {"key": "final_judgment", "title": "Final judgment", "text": "Private deal.", "evidence": []},
        ],
    )
    video = task.decision.video
    Keyframe.objects.create(video=video, index=0, timestamp=0.5, image="keyframes/a.jpg", selected=False)
    kf = Keyframe.objects.create(video=video, index=1, timestamp=3.25, image="keyframes/b.jpg", selected=True)
    # Evidence naming a keyframe without its time still seeks to it.
    cot = task.decision.cot
    cot[1]["evidence"] = [{"kind": "keyframe", "ref": kf.pk, "label": "QR code"}]
    task.decision.__class__.objects.filter(pk=task.decision.pk).update(cot=cot)
    SegmentFactory(video=video, index=0, start=1.5, end=3.0, text="add me on wechat")
    user = make_user("moderator")
    review_claim_next(user=user)

    html = _login(user).get(reverse("moderation:review_task", args=[task.pk])).content.decode()

    assert f'<video data-player controls preload="metadata" src="{video.file.url}"' in html
    assert 'data-seek="3.25" class="selected"' in html and 'data-seek="0.5" class=""' in html
    assert 'class="segment" data-seek="1.5"' in html
    assert 'data-seek="2.5" class="ev-segment"' in html  # CoT evidence seeks the player
    assert 'data-seek="3.25" class="ev-keyframe">QR code' in html
    assert "Steering users to private deals" in html and "0.87" in html
    assert "evidence-baseline-v1" in html and str(task.decision.policy_version) in html
    assert 'data-shield class="media-col shielded"' in html  # media is shielded until revealed
    for key in ("a", "o", "n", "r"):
        assert f"<kbd>{key}</kbd>" in html and f'data-hotkey="{key}"' in html
    # The override label picker: every label of the policy, searchable by key, English name and keywords.
    assert '<label data-pick-option data-search="夸大商品功效 exaggerated product claims 根治 ' in html
    assert (
        ' commercial behaviour">'
        '<input type="radio" name="label" value="夸大商品功效" data-severities="low medium high">'
        " Exaggerated product claims <small>(夸大商品功效)</small></label>"
    ) in html
    assert 'data-hotkey="o" data-picker-filter' in html


def test_the_override_label_filter_finds_a_label_by_its_policy_keywords(make_task, make_user):
    """The picker filters on data-search (static/workbench.js); an English word the policy gives a Chinese
    label ("gambling" for 违法犯罪) or its category's name finds it, not only its key or name."""
    task = make_task()
    user = make_user("moderator")
    review_claim_next(user=user)
    html = _login(user).get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    options = re.findall(r'data-search="([^"]*)"><input type="radio" name="label" value="([^"]*)"', html)
    searches = {key: unescape(text) for text, key in options}

    def found(query: str) -> list[str]:
        return sorted(key for key, text in searches.items() if query in text)

    assert len(searches) > 10
    assert found("gambling") == ["违法犯罪"] and found("赌博") == ["违法犯罪"]
    assert found("deepfake") == ["未添加AI标识"]
    assert "违法犯罪" in found("law & social safety")  # by category too
    assert found("non-violative") == ["正向"]


def test_the_override_filter_says_a_newer_policy_version_has_a_label_the_items_version_lacks(make_task, make_user):
    """Walked (hwalk22 m10): "loan", a keyword only v2 has, said "No label matches" on an item kept under v1."""
    import copy

    from moderation.policies.services import policy_version_create_draft, policy_version_publish

    task = make_task()
    v1 = task.decision.policy_version
    taxonomy = copy.deepcopy(v1.taxonomy)
    tag = taxonomy[0]["tags"][0]
    tag["keywords"].append("fast loan")
    editor = make_user("policy_editor")
    v2 = policy_version_publish(
        version=policy_version_create_draft(policy=v1.policy, taxonomy=taxonomy, by=editor, notes="loans"), by=editor
    )
    user = make_user("moderator")
    review_claim_next(user=user)
    html = _login(user).get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert f'value="{tag["key"]}"' in html  # the form keeps v1's labels
    pinned = re.findall(r'data-search="([^"]*)"><input type="radio"', html)
    assert not any("loan" in text for text in pinned)
    hint = html.split("data-pick-newer hidden>")[1].split("</p>")[0]
    assert f"decided under v{v1.number}" in hint and f"v{v2.number} (newer) has" in hint
    newer = re.findall(r'<span data-pick-newer-option data-search="([^"]*)" data-name="([^"]*)"', html)
    assert [(unescape(name)) for text, name in newer if "loan" in text] == [f"{tag['name']} ({tag['key']})"]


def test_the_review_screen_is_never_served_from_the_browser_cache(make_task, make_user):
    """Back after Release must not show the released item's live form from the cache or bfcache: the
    screen (full page and the prefetched partial) says no-store, so the browser asks the server again."""
    task = make_task()
    user = make_user("moderator")
    review_claim_next(user=user)
    client = _login(user)
    url = reverse("moderation:review_task", args=[task.pk])
    for response in (client.get(url), client.get(url + "?prefetch=1", HTTP_HX_REQUEST="true")):
        assert response.status_code == 200
        assert "no-store" in response.headers["Cache-Control"]
    client.post(reverse("moderation:review_release", args=[task.pk]))
    back = client.get(url)  # what Back now loads: a refusal that says why, not the live form
    assert back.status_code == 403 and "data-verdict-form" not in back.content.decode()
    assert "not claimed by you" in back.content.decode()


def test_another_reviewers_decided_item_says_it_left_the_queue_without_naming_the_verdict(make_task, make_user):
    """Opening someone else's reviewed item said "not claimed by you; use Claim next", which never gives it again."""
    task = make_task()
    first = make_user("moderator", username="first-reviewer")
    review_claim_next(user=first)
    review_submit(task=task, user=first, verdict="approve")
    refused = _login(make_user("admin")).get(reverse("moderation:review_task", args=[task.pk]))
    html = refused.content.decode()
    assert refused.status_code == 403 and "already been reviewed and has left the queue" in html
    assert "not claimed by you" not in html and "first-reviewer" not in html and "pprove" not in html


def test_untrusted_text_is_escaped(make_task, make_user):
    task = make_task(
        decision__video__title=XSS,
        decision__video__description=XSS,
        decision__cot=[
            {"key": "analysis", "title": XSS, "text": XSS, "evidence": [{"kind": "segment", "label": XSS, "t": 1}]}
        ],
    )
    SegmentFactory(video=task.decision.video, index=0, text=XSS)
    user = make_user("moderator")
    review_claim_next(user=user)

    html = _login(user).get(reverse("moderation:review_task", args=[task.pk])).content.decode()

    assert XSS not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def test_only_the_claimant_may_open_an_item(make_task, make_user):
    task = make_task()
    review_claim_next(user=make_user("moderator"))
    resp = _login(make_user("moderator")).get(reverse("moderation:review_task", args=[task.pk]))
    assert resp.status_code == 403
    assert "claimed by another reviewer" in resp.content.decode()
    assert "Your role may not" not in resp.content.decode()  # the reason is the claim, not the role


def test_submit_and_next_lands_on_the_next_item(make_task, make_user):
    first, second = make_task(), make_task()
    user = make_user("moderator")
    client = _login(user)
    client.post(reverse("moderation:claim_next"))

    resp = client.post(reverse("moderation:review_submit", args=[first.pk]), {"verdict": "approve"})

    assert resp["Location"] == reverse("moderation:review_task", args=[second.pk])
    second.refresh_from_db()
    assert second.claimed_by == user
    resp = client.post(
        reverse("moderation:review_submit", args=[second.pk]),
        {"verdict": "override", "label": "色情低俗", "severity": "high", "note": "nudity at 0:03"},
        follow=True,
    )
    assert resp.redirect_chain[-1][0] == reverse("moderation:queue")
    assert "Queue is empty" in resp.content.decode()
    assert Review.objects.get(task=second).label == "色情低俗"


def test_double_post_records_one_review_and_explains(make_task, make_user):
    task = make_task()
    client = _login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))
    url = reverse("moderation:review_submit", args=[task.pk])

    client.post(url, {"verdict": "approve"})
    resp = client.post(url, {"verdict": "override", "label": "色情低俗"}, follow=True)

    assert resp.status_code == 200
    # The reviewer's own verdict is named (hwalk15), not a bare "Already reviewed".
    assert "You already decided this item at" in resp.content.decode()
    assert Review.objects.filter(task=task).count() == 1


def test_service_errors_become_messages_not_500(make_task, make_user):
    task = make_task()
    client = _login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))
    resp = client.post(
        reverse("moderation:review_submit", args=[task.pk]), {"verdict": "override", "label": ""}, follow=True
    )
    assert resp.status_code == 200
    assert resp.redirect_chain[-1][0] == reverse("moderation:review_task", args=[task.pk])
    assert "Choose the label" in resp.content.decode()


def test_a_refused_verdict_puts_the_focus_on_why_not_on_the_page_body(make_task, make_user):
    """Walked (hwalk22 m04): a refused approve left the focus on the body. Sent as a plain form, the refusal's
    message takes it (server-rendered autofocus); the screen's own check (static/review.js) focuses the field."""
    from django.conf import settings

    task = make_task()
    client = _login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))
    resp = client.post(
        reverse("moderation:review_submit", args=[task.pk]),
        {"verdict": "override", "label": task.decision.policy_version.safe_label + "-nope"},
        follow=True,
    )
    page = resp.content.decode()
    focused = re.findall(r'<li class="msg-error" tabindex="-1" autofocus>([^<]*)</li>', page)
    assert len(focused) == 1 and "is not a label of policy" in unescape(focused[0])
    assert page.count("autofocus") == 1
    # A page without a refusal focuses nothing.
    again = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "autofocus" not in again
    script = (settings.BASE_DIR / "static" / "review.js").read_text()
    assert "field: firstSeverity()" in script and "target.focus()" in script


def test_submit_by_someone_who_lost_the_item_is_refused(make_task, make_user):
    task = make_task()
    alice, bob = make_user("moderator"), make_user("moderator")
    review_claim_next(user=alice)
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at="2000-01-01T00:00:00Z")
    review_claim_next(user=bob)

    resp = _login(alice).post(reverse("moderation:review_submit", args=[task.pk]), {"verdict": "approve"}, follow=True)

    assert "your claim expired and it was given to them" in resp.content.decode()
    assert not Review.objects.exists()


def test_reveal_choice_is_remembered(make_task, make_user):
    task = make_task()
    user = make_user("moderator")
    review_claim_next(user=user)
    client = _login(user)
    url = reverse("moderation:review_task", args=[task.pk])

    resp = client.post(reverse("moderation:review_reveal"), {"reveal": "1", "next": url})
    assert resp["Location"] == url
    assert " shielded" not in client.get(url).content.decode()
    assert client.post(reverse("moderation:review_reveal"), {"reveal": "0"}, HTTP_HX_REQUEST="true").status_code == 204
    assert "media-col shielded" in client.get(url).content.decode()
    # An off-site "next" is not followed.
    resp = client.post(reverse("moderation:review_reveal"), {"reveal": "1", "next": "https://evil.example/"})
    assert resp["Location"] == reverse("moderation:queue")


@pytest.mark.django_db
def test_unparseable_model_output_is_reviewable_with_the_reason_and_raw_text_escaped(client_as):  # type: ignore[no-untyped-def]
    from moderation.review.services import review_claim_next
    from tests.factories import DecisionFactory, ReviewTaskFactory

    decision = DecisionFactory(
        label="", cot=[], parse_error="expected the five stages", raw_output="<b>garbage</b> tokens"
    )
    ReviewTaskFactory(decision=decision)
    client = client_as("moderator")
    from django.contrib.auth.models import User

    user = User.objects.get(pk=int(client.session["_auth_user_id"]))
    task = review_claim_next(user=user)
    page = client.get(f"/review/{task.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "could not be fully parsed: expected the five stages" in body
    assert "<b>garbage</b>" not in body and "&lt;b&gt;garbage&lt;/b&gt; tokens" in body
    response = client.post(
        f"/review/{task.pk}/submit/", {"verdict": "override", "label": "引导私下交易", "severity": "high"}
    )
    assert response.status_code in (200, 302)


@pytest.mark.django_db
def test_the_review_screen_shows_how_the_decision_was_made_and_no_template_source(client_as):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next
    from tests.factories import DecisionFactory, ReviewTaskFactory

    decision = DecisionFactory(
        backend="vllm",
        latency_ms=812.4,
        prompt_tokens=1536,
        completion_tokens=211,
        scene="诱导交易",
        severity="high",
    )
    ReviewTaskFactory(decision=decision)
    client = client_as("moderator")
    task = review_claim_next(user=User.objects.get(pk=int(client.session["_auth_user_id"])))
    body = client.get(f"/review/{task.pk}/").content.decode()
    assert "(vllm)" in body and "812 ms" in body and "1536 prompt + 211 output tokens" in body
    assert "scene <strong>诱导交易</strong>" in body and "severity <strong>high</strong>" in body
    assert "{#" not in body and "{%" not in body  # a template comment or tag leaking into the page


def test_no_template_comment_spans_lines():
    """``{# … #}`` ends at the line's end; a multi-line one is shown to users as text."""
    from pathlib import Path

    offenders = [
        f"{path}:{n}"
        for path in Path("templates").rglob("*.html")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.count("{#") != line.count("#}")
    ]
    assert offenders == []


def test_submit_and_next_retitles_the_tab_and_keeps_reviewed_items_out_of_the_history_cache(make_task, make_user):
    first, second = make_task(priority=2), make_task(priority=1)
    user = make_user("moderator")
    review_claim_next(user=user)
    client = _login(user)

    response = client.post(
        reverse("moderation:review_submit", args=[first.pk]), {"verdict": "approve"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode().lstrip()
    # htmx applies a <title> only at the top level of the swapped-in fragment
    assert body.startswith(f"<title>Review #{second.pk} · video #{second.decision.video_id} · Review workbench</title>")
    assert f'<div id="review-screen" data-task="{second.pk}" hx-history="false"' in body


def test_an_item_skipped_earlier_that_comes_back_says_so(make_task, make_user):
    """Walked: skipping item A ("Not sure: let another reviewer decide") said it was back in the queue for another
    reviewer; deciding the next item then served A again to the same reviewer, as if new. Its screen now says."""
    from moderation.review.services import review_skip

    first, second = make_task(priority=2), make_task(priority=1)
    alice = make_user("moderator")
    assert review_claim_next(user=alice) == first
    assert review_skip(task=first, user=alice, reason="Not sure: let another reviewer decide") == second
    client = Client()
    client.force_login(alice)
    assert 'id="skipped-before"' not in client.get(reverse("moderation:review_task", args=[second.pk])).content.decode()
    review_submit(task=second, user=alice, verdict="approve")
    assert review_claim_next(user=alice) == first  # nothing else waits: it comes back
    page = client.get(reverse("moderation:review_task", args=[first.pk])).content.decode()
    note = page[page.index('id="skipped-before"') : page.index("</p>", page.index('id="skipped-before"'))]
    assert "You skipped this item at" in note and "(“Not sure: let another reviewer decide”)" in note
    assert f"nothing else is waiting for you in “{first.queue.name}”" in note


def test_the_verdict_panel_says_an_accepted_correction_relabelled_the_video(make_task, make_user):
    """Nothing on the review screen said an accepted CoT correction had given the video another label than the
    model's: one line in the verdict panel says so, linking to the correction for those who may open it."""
    from annotation.models import CotCorrection
    from tests.factories import CotCorrectionFactory

    task = make_task()
    moderator, admin = make_user("moderator"), make_user("admin")
    review_claim_next(user=moderator, queue=task.queue)
    url = reverse("moderation:review_task", args=[task.pk])
    client = _login(moderator)
    client.get(url)
    with CaptureQueriesContext(connection) as without:
        client.get(url)
    correction = CotCorrectionFactory(decision=task.decision, label="夸大商品功效")
    assert task.decision.label != "夸大商品功效"
    assert 'id="relabelled-by-correction"' not in client.get(url).content.decode()  # submitted, not accepted yet
    CotCorrection.objects.filter(pk=correction.pk).update(status=CotCorrection.Status.ACCEPTED)
    with CaptureQueriesContext(connection) as shown:
        page = client.get(url).content.decode()
    assert len(shown) == len(without)  # read with the task's row: no statement of its own
    line = re.search(r'<p id="relabelled-by-correction">(.*?)</p>', page, re.S)
    assert line is not None
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", line[1])).split())
    assert text.startswith("An accepted CoT correction labels this video 夸大商品功效")
    assert f"(the model said {task.decision.label})" in text
    assert "see the correction" not in text  # a moderator may not open the corrections screens
    # The same label as the model's is no relabelling.
    CotCorrection.objects.filter(pk=correction.pk).update(label=task.decision.label)
    assert 'id="relabelled-by-correction"' not in client.get(url).content.decode()
    CotCorrection.objects.filter(pk=correction.pk).update(label="夸大商品功效")
    task.claimed_by = admin
    task.save(update_fields=["claimed_by"])
    href = reverse("annotation:correction_edit", args=[task.decision.pk])
    assert f'<a href="{href}">see the correction</a>' in _login(admin).get(url).content.decode()
