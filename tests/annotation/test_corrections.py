"""Labelers correcting a decision's chain-of-thought, with optimistic concurrency."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.errors import AnnotationError, CorrectionConflict
from annotation.models import CotCorrection
from annotation.services import cot_correction_save
from tests.annotation.conftest import STAGE_KEYS

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def _form(decision, base_revision: int, label: str = "引导私下交易", **texts: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    data = {f"stage-{s['key']}": s["text"] for s in decision.cot}
    data.update({f"stage-{k}": v for k, v in texts.items()})
    data.update({"label": label, "base_revision": str(base_revision)})
    return data


def test_save_keeps_structure_and_records_the_diff(decision, make_user):
    labeler = make_user("labeler")
    correction = cot_correction_save(
        decision=decision,
        author=labeler,
        stages={"analysis": "The speaker steers\r\nbuyers to WeChat.", "final_judgment": "model final_judgment"},
        label="夸大商品功效",
        base_revision=0,
    )
    assert correction.revision == 1 and correction.author == labeler and correction.label == "夸大商品功效"
    assert [s["key"] for s in correction.stages] == list(STAGE_KEYS)
    assert correction.stages[1]["text"] == "The speaker steers\nbuyers to WeChat."
    assert correction.stages[0]["evidence"] == decision.cot[0]["evidence"]  # evidence preserved
    assert correction.diff == [
        {
            "key": "analysis",
            "title": "Analysis",
            "before": "model analysis",
            "after": "The speaker steers\nbuyers to WeChat.",
        }
    ]
    decision.refresh_from_db()
    assert decision.cot[1]["text"] == "model analysis"  # the model's original stays beside it


@pytest.mark.parametrize(
    ("stages", "label", "message"),
    [
        ({}, "no-such-label", "is not a label"),
        ({"made_up": "x"}, "正向", "Unknown CoT stage"),
        ({"analysis": "   "}, "正向", "cannot be empty"),
        ({"analysis": "x" * (2 * 1024 * 1024)}, "正向", "2,097,152 characters long; a stage may hold at most 8,000"),
    ],
)
def test_invalid_corrections_are_refused(decision, make_user, stages, label, message):
    with pytest.raises(AnnotationError, match=message):
        cot_correction_save(decision=decision, author=make_user("labeler"), stages=stages, label=label, base_revision=0)
    assert not CotCorrection.objects.exists()


def test_stale_revision_is_refused_with_the_newer_text(decision, make_user):
    first, second = make_user("labeler"), make_user("labeler")
    cot_correction_save(decision=decision, author=first, stages={}, label="引导私下交易", base_revision=0)
    cot_correction_save(
        decision=decision, author=first, stages={"analysis": "first's fix"}, label="正向", base_revision=1
    )

    with pytest.raises(CorrectionConflict) as caught:
        cot_correction_save(
            decision=decision, author=second, stages={"analysis": "mine"}, label="正向", base_revision=1
        )

    assert caught.value.current.revision == 2
    assert caught.value.current.stages[1]["text"] == "first's fix"
    assert CotCorrection.objects.get().stages[1]["text"] == "first's fix"


def test_two_labelers_on_revision_1_second_save_is_refused_and_sees_the_first(decision, make_user):
    cot_correction_save(
        decision=decision, author=make_user("labeler"), stages={}, label="引导私下交易", base_revision=0
    )
    url = reverse("annotation:correction_edit", args=[decision.pk])
    alice, bob = Client(), Client()
    alice.force_login(make_user("labeler"))
    bob.force_login(make_user("labeler"))
    assert 'name="base_revision" value="1"' in alice.get(url).content.decode()
    assert 'name="base_revision" value="1"' in bob.get(url).content.decode()

    resp = alice.post(url, _form(decision, 1, analysis="Alice: QR code leads to a private shop"))
    assert resp.status_code == 302
    assert CotCorrection.objects.get().revision == 2

    resp = bob.post(url, _form(decision, 1, analysis="Bob: harmless cooking video", label="正向"))

    html = resp.content.decode()
    assert resp.status_code == 409
    assert "Alice: QR code leads to a private shop" in html  # the other labeler's current text
    assert "Bob: harmless cooking video" in html  # Bob's typing is not lost
    assert 'name="base_revision" value="2"' in html  # having seen it, Bob may now save over it
    # only the stage the two wrote differently is marked, not the ones they left alike
    assert html.count('class="panel stage conflict"') == 1
    assert 'class="panel stage conflict" data-stage="analysis"' in html
    correction = CotCorrection.objects.get()
    assert correction.revision == 2 and correction.stages[1]["text"] == "Alice: QR code leads to a private shop"

    resp = bob.post(url, _form(decision, 2, analysis="Bob: merged text"))
    assert resp.status_code == 302
    assert CotCorrection.objects.get().revision == 3


def test_the_same_text_sent_twice_is_one_revision_not_a_conflict_with_oneself(decision, client_as):  # type: ignore[no-untyped-def]
    """A double click, or the form sent again after the back button, carries the revision it was loaded
    from: the second send found "someone" (the labeler) saved meanwhile and answered 409 with a merge
    screen, or, after the back button, wrote an identical revision 2."""
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    form = _form(decision, 0, analysis="QR code leads to a private shop")

    assert client.post(url, form).status_code == 302
    again = client.post(url, form, follow=True)

    assert again.status_code == 200 and "Nothing new to save: revision 1" in again.content.decode()
    assert CotCorrection.objects.get().revision == 1
    form["base_revision"] = "1"  # the page reloaded after the back button
    assert client.post(url, form).status_code == 302 and CotCorrection.objects.get().revision == 1
    form["action"] = "draft"  # a real change (submitted → draft) is still a new revision
    assert client.post(url, form).status_code == 302 and CotCorrection.objects.get().revision == 2


def test_a_labelers_own_save_from_another_tab_is_not_called_someone_elses(decision, client_as):  # type: ignore[no-untyped-def]
    """Two tabs of one labeler: the older tab's save read "labeler saved revision 2 of this correction while
    you were editing; their text is shown beside yours", "Saved meanwhile by labeler", as if by someone else."""
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    assert client.post(url, _form(decision, 0, analysis="first tab")).status_code == 302

    stale = client.post(url, _form(decision, 0, analysis="second tab"))

    html = stale.content.decode()
    assert stale.status_code == 409
    assert "You saved revision 1 of this correction in another tab or window while this page was open" in html
    assert "Saved meanwhile by you in another tab (revision 1)" in html and "their text" not in html


def test_edit_screen_shows_original_beside_editable_stages(decision, client_as):
    html = client_as("labeler").get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()
    for key in STAGE_KEYS:
        assert f'name="stage-{key}"' in html
        assert f"model {key}" in html
    assert 'data-seek="2.5" class="ev-segment"' in html
    assert '<option value="引导私下交易" selected>' in html
    assert 'name="base_revision" value="0"' in html


def test_list_shows_decisions_latest_first_with_links(decision, policy_version, client_as):
    from tests.factories import DecisionFactory

    newer = DecisionFactory(policy_version=policy_version, video__title="Newer video")
    html = client_as("labeler").get(reverse("annotation:correction_list")).content.decode()
    assert html.index("Newer video") < html.index(decision.video.title)
    assert reverse("annotation:correction_edit", args=[newer.pk]) in html


def test_bad_post_is_a_400_with_a_message_not_a_500(decision, client_as):
    url = reverse("annotation:correction_edit", args=[decision.pk])
    resp = client_as("labeler").post(url, _form(decision, 0, label="nope"))
    assert resp.status_code == 400
    assert "is not a label" in resp.content.decode()
    too_long = {**_form(decision, 0, label="正向"), "stage-analysis": "很长" * 5000}
    resp = client_as("labeler").post(url, too_long)
    assert resp.status_code == 400 and "a stage may hold at most 8,000" in resp.content.decode()
    resp = client_as("labeler").post(url, {"label": "正向"})  # no base revision
    assert resp.status_code == 400
    assert not CotCorrection.objects.exists()


def test_model_and_user_text_is_escaped(policy_version, client_as):
    from tests.factories import DecisionFactory

    decision = DecisionFactory(
        policy_version=policy_version,
        video__title=XSS,
        cot=[{"key": "analysis", "title": XSS, "text": XSS, "evidence": [{"kind": "segment", "label": XSS, "t": 1}]}],
    )
    client = client_as("labeler")
    for url in (reverse("annotation:correction_list"), reverse("annotation:correction_edit", args=[decision.pk])):
        html = client.get(url).content.decode()
        assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_role_checks(decision, client_as):
    url = reverse("annotation:correction_edit", args=[decision.pk])
    assert client_as("moderator").get(reverse("annotation:correction_list")).status_code == 403
    assert client_as("moderator").post(url, _form(decision, 0)).status_code == 403
    assert Client().get(url)["Location"].startswith("/login/")
    assert client_as("admin").get(url).status_code == 200
    assert not CotCorrection.objects.exists()


def test_an_unparsed_answer_is_corrected_by_writing_every_stage(policy_version, make_user, client_as):
    from tests.factories import DecisionFactory

    decision = DecisionFactory(
        policy_version=policy_version, label="", cot=[], raw_output="@@ garbage", parse_error="expected the five stages"
    )
    html = client_as("labeler").get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()
    for key in STAGE_KEYS:
        assert f'name="stage-{key}"' in html
    labeler = make_user("labeler")
    with pytest.raises(AnnotationError, match="cannot be empty"):
        cot_correction_save(decision=decision, author=labeler, stages={"analysis": "x"}, label="正向", base_revision=0)
    written = {key: f"{key} written by a labeler" for key in STAGE_KEYS}
    correction = cot_correction_save(decision=decision, author=labeler, stages=written, label="正向", base_revision=0)
    assert [s["key"] for s in correction.stages] == list(STAGE_KEYS)
    assert {d["key"] for d in correction.diff} == set(STAGE_KEYS)
    assert correction.stages[1]["text"] == "analysis written by a labeler"


def test_the_correction_screen_shows_the_user_feedback_stage_4_is_about(decision, make_user):  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from moderation.feedback.models import FeedbackAggregate

    client = Client()
    client.force_login(make_user("labeler"))
    url = reverse("annotation:correction_edit", args=[decision.pk])
    assert "No user feedback received for this video." in client.get(url).content.decode()

    FeedbackAggregate.objects.create(video=decision.video, views=200, reports=14, last_event_at=timezone.now())
    html = client.get(url).content.decode()
    assert "<dt>Reports</dt><dd>14 (7%)" in html


def test_the_change_list_names_stages_by_their_title(decision, make_user, client_as):
    cot_correction_save(
        decision=decision, author=make_user("labeler"), stages={"analysis": "Steers buyers away."},
        label=decision.label, base_revision=0, submit=True,
    )  # fmt: skip
    html = client_as("labeler").get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()
    assert "<li><strong>Analysis</strong>: <del>model analysis</del>" in html


def test_a_new_label_with_a_final_judgment_that_still_names_the_old_one_is_refused_on_that_stage(decision, client_as):
    """Seen in Chromium: a correction moved the label from 引导私下交易 to 正向 and was submitted with the final
    judgment still reading "Violation: 引导私下交易"; the second labeler was shown a chain that contradicted itself."""
    from annotation.errors import StageRefused

    final = "Violation: 引导私下交易 (Steering users to private deals), confidence 0.82."
    decision.cot[-1]["text"] = final
    decision.save(update_fields=["cot"])
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    resp = client.post(url, {**_form(decision, 0, label="正向", analysis="No contact is offered."), "action": "submit"})
    assert resp.status_code == 400 and not CotCorrection.objects.exists()
    html = resp.content.decode()
    stage = html[html.index('data-stage="final_judgment"') :]
    stage = stage[: stage.index("</section>")]
    assert 'id="stage-error-final_judgment"' in stage and "“Final judgment” concludes 引导私下交易" in stage
    assert "the final label is 正向 (Non-violative)" in stage and 'aria-invalid="true"' in stage
    assert ">No contact is offered.</textarea>" in html  # what was typed stays
    assert '<option value="正向" selected>' in html

    # A draft may keep the old verdict while the labeler works on it; submitting it is refused the same way.
    client.post(url, {**_form(decision, 0, label="正向"), "action": "draft"})
    assert CotCorrection.objects.get().status == CotCorrection.Status.DRAFT
    with pytest.raises(StageRefused, match="concludes 引导私下交易"):
        cot_correction_save(
            decision=decision, author=CotCorrection.objects.get().author, stages={}, label="正向", base_revision=1
        )
    # The stage rewritten for the new label (or the old label chosen again) is submitted.
    resp = client.post(
        url,
        {
            **_form(decision, 1, label="正向", final_judgment="Non-violative (正向): no contact offered."),
            "action": "submit",
        },
    )
    assert resp.status_code == 302 and CotCorrection.objects.get().status == CotCorrection.Status.SUBMITTED
    resp = client.post(url, {**_form(decision, 2, label="引导私下交易"), "action": "submit"})
    assert resp.status_code == 302 and CotCorrection.objects.get().label == "引导私下交易"


def test_a_final_judgment_rewritten_to_another_label_is_refused_in_words_that_fit_what_was_done(decision, client_as):
    """Walk hwalk20: the labeler rewrote the final judgment to conclude 夸大商品功效 and left the final label as the
    model's; the refusal said the stage "still concludes" it and to "choose 夸大商品功效 again", a label nobody had
    chosen. It names the stage's conclusion and both ways out, whichever was changed."""
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    rewritten = "Violation: 夸大商品功效 (Exaggerated product claims): the phone is sold as unbreakable."
    resp = client.post(url, {**_form(decision, 0, final_judgment=rewritten), "action": "submit"})
    assert resp.status_code == 400 and not CotCorrection.objects.exists()
    html = resp.content.decode()
    said = html[html.index('id="stage-error-final_judgment"') :]
    said = said[: said.index("</")]
    assert "“Final judgment” concludes 夸大商品功效" in said and "the final label is 引导私下交易" in said
    assert "or make 夸大商品功效 the final label" in said
    assert "still" not in said and "again" not in said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("   ", "“Final judgment” cannot be empty"),
        ("x" * 8001, "8,001 characters long; a stage may hold at most 8,000"),
    ],
)
def test_an_emptied_or_too_long_stage_is_refused_on_that_stage(decision, client_as, text, said):  # type: ignore[no-untyped-def]
    """Seen in Chromium: emptying the last stage was said only at the page's top ("Stage … cannot be
    empty."), five stages above the box to fix; the label-vs-verdict refusal was already said on its stage."""
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    typed = _form(decision, 0, analysis="Steers buyers to WeChat.", final_judgment=text)

    resp = client.post(url, {**typed, "action": "draft"})

    assert resp.status_code == 400 and not CotCorrection.objects.exists()
    html = resp.content.decode()
    stage = html[html.index('data-stage="final_judgment"') :]
    stage = stage[: stage.index("</section>")]
    assert 'id="stage-error-final_judgment"' in stage and said in stage and 'aria-invalid="true"' in stage
    assert "Steers buyers to WeChat." in html  # the other stage's typing is kept


def test_an_empty_filtered_correction_list_says_what_the_filter_found_none_of(decision, client_as):  # type: ignore[no-untyped-def]
    """Seen in Chromium: with decisions waiting to be corrected, the Submitted filter read "No model
    decisions to correct yet." (as if there were none at all)."""
    client = client_as("labeler")
    url = reverse("annotation:correction_list")

    submitted = client.get(url, {"status": "submitted"}).content.decode()
    everything = client.get(url).content.decode()

    assert "No correction is waiting for a second labeler." in submitted and "No model decisions" not in submitted
    assert f"#{decision.pk}" in everything and 'id="corrections-empty"' not in everything


def test_the_labeling_panels_counts_open_lists_of_exactly_what_they_count(decision, policy_version, make_user):  # type: ignore[no-untyped-def]
    """Seen in Chromium: "Corrections waiting for a second labeler: 0" opened a list holding the labeler's
    own submitted correction, and "Your drafts" listed every labeler's drafts."""
    import re

    from tests.factories import DecisionFactory

    me, colleague = make_user("labeler"), make_user("labeler")
    cot = [dict(stage) for stage in decision.cot]
    others = [DecisionFactory(policy_version=policy_version, label="引导私下交易", cot=cot) for _ in range(2)]
    save = {"stages": {"analysis": "Steers buyers to WeChat."}, "label": "引导私下交易", "base_revision": 0}
    cot_correction_save(decision=decision, author=me, submit=True, **save)  # mine: not mine to review
    cot_correction_save(decision=others[0], author=colleague, submit=True, **save)  # theirs: mine to review
    cot_correction_save(decision=others[1], author=colleague, submit=False, **save)  # their draft
    client = Client()
    client.force_login(me)

    home = client.get("/").content.decode()
    counted = dict(re.findall(r'<a href="(/annotation/corrections/\?[^"]+)">(\d+)</a>', home))
    for link, count in counted.items():
        listed = client.get(link.replace("&amp;", "&")).content.decode()
        rows = re.findall(r"<td>#(\d+) <small", listed)
        assert len(rows) == int(count), (link, rows)
    review = next(link for link in counted if "status=submitted" in link)
    assert counted[review] == "1" and counted[next(link for link in counted if "status=draft" in link)] == "0"


def test_an_unknown_correction_filter_is_said_not_silently_dropped(decision, client_as):  # type: ignore[no-untyped-def]
    """``?status=banana`` (or ``?by=banana``) listed every decision under "All" without a word: a mistyped
    link read as a filter that matched everything."""
    client = client_as("labeler")
    url = reverse("annotation:correction_list")

    status = client.get(url, {"status": "banana"})
    by = client.get(url, {"by": "banana"})

    assert status.status_code == 400 and by.status_code == 400
    said = status.content.decode()
    assert "There is no correction status “banana”: showing every decision." in said and 'role="alert"' in said
    assert f"#{decision.pk}" in said and '<strong aria-current="page">All</strong>' in said
    assert "There is no author filter “banana”: showing everyone&#x27;s corrections." in by.content.decode()
    assert f"#{decision.pk}" in by.content.decode()
    known = client.get(url, {"status": "none", "by": ""})
    assert known.status_code == 200 and "There is no" not in known.content.decode()


def test_a_submitted_correction_leads_on_to_the_next_decision_not_corrected(decision, policy_version, client_as):  # type: ignore[no-untyped-def]
    """Walked: after "Submit for review" the labeler stayed on the page just sent, with the list ("← all
    decisions") the only way on. The page now links the next decision of "Not corrected" (down the list, then from
    its top), and nothing while the correction is a draft."""
    from datetime import timedelta

    from tests.factories import DecisionFactory

    older = DecisionFactory(policy_version=policy_version, video__title="Older <one>")
    older.created_at = decision.created_at - timedelta(minutes=5)
    older.save(update_fields=["created_at"])
    newer = DecisionFactory(policy_version=policy_version, video__title="Newer")
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    client.post(url, {**_form(decision, 0, analysis="private deal"), "action": "draft"})
    assert 'id="next-uncorrected"' not in client.get(url).content.decode()  # a draft: still being worked on

    page = client.post(url, _form(decision, 1, analysis="private deal"), follow=True).content.decode()
    nxt = page[page.index('id="next-uncorrected"') : page.index("</p>", page.index('id="next-uncorrected"'))]
    assert reverse("annotation:correction_edit", args=[older.pk]) in nxt and "“Older &lt;one&gt;”" in nxt

    client.post(reverse("annotation:correction_edit", args=[older.pk]), _form(older, 0, analysis="ok"))
    page = client.get(reverse("annotation:correction_edit", args=[older.pk])).content.decode()
    assert reverse("annotation:correction_edit", args=[newer.pk]) in page  # none below: from the top


def test_the_correction_screen_says_the_label_that_stands_when_a_person_labelled_the_video(decision, make_user):
    """Walked: a moderator overrode the model (正向 → 违法犯罪) and the labeler correcting the model's reasoning saw
    only the model's label; a correction could contradict the trusted label training reads, unseen."""
    from moderation.labels.models import ItemLabel

    client = Client()
    client.force_login(make_user("labeler"))
    url = reverse("annotation:correction_edit", args=[decision.pk])
    assert 'id="human-label"' not in client.get(url).content.decode()  # nobody labelled it yet

    ItemLabel.objects.create(
        video=decision.video, label="违法犯罪", source=ItemLabel.Source.REVIEW, policy_version=decision.policy_version
    )
    page = client.get(url).content.decode()
    line = page[page.index('id="human-label"') : page.index("</p>", page.index('id="human-label"'))]
    name = decision.policy_version.label_names()["违法犯罪"]
    assert "(human review)" in line and name in line and "(违法犯罪)" in line
    assert "not the model's label" in line

    ItemLabel.objects.create(
        video=decision.video,
        label="引导私下交易",
        source=ItemLabel.Source.ADJUDICATION,
        policy_version=decision.policy_version,
    )
    page = client.get(url).content.decode()
    line = page[page.index('id="human-label"') : page.index("</p>", page.index('id="human-label"'))]
    assert "adjudicated" in line and "(引导私下交易)" in line and "not the model's label" not in line
