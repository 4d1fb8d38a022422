"""Correction lifecycle: draft, submitted, accepted by a second labeler or rejected with a reason."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from annotation.errors import AnnotationError, CorrectionConflict
from annotation.models import CotCorrection
from annotation.services import cot_correction_accept, cot_correction_reject, cot_correction_save

pytestmark = pytest.mark.django_db


def _save(decision, author, *, base=0, submit=True, text="fixed"):  # type: ignore[no-untyped-def]
    return cot_correction_save(
        decision=decision, author=author, stages={"analysis": text}, label="正向", base_revision=base, submit=submit
    )


def test_draft_cannot_be_reviewed_until_submitted(decision, make_user):
    author, other = make_user("labeler"), make_user("labeler")
    draft = _save(decision, author, submit=False)
    assert draft.status == CotCorrection.Status.DRAFT
    with pytest.raises(AnnotationError, match="Only submitted"):
        cot_correction_accept(correction=draft, by=other, base_revision=1)
    submitted = _save(decision, author, base=1)
    assert submitted.status == CotCorrection.Status.SUBMITTED
    accepted = cot_correction_accept(correction=submitted, by=other, base_revision=2)
    assert accepted.status == CotCorrection.Status.ACCEPTED and accepted.reviewed_by == other


def test_author_cannot_accept_own_and_reject_needs_a_reason(decision, make_user):
    author, other = make_user("labeler"), make_user("labeler")
    correction = _save(decision, author)
    with pytest.raises(AnnotationError, match="another labeler"):
        cot_correction_accept(correction=correction, by=author, base_revision=1)
    with pytest.raises(AnnotationError, match="Say why"):
        cot_correction_reject(correction=correction, by=other, base_revision=1, reason="  ")
    rejected = cot_correction_reject(correction=correction, by=other, base_revision=1, reason="Stage 2 misreads it")
    assert rejected.status == CotCorrection.Status.REJECTED and rejected.reject_reason == "Stage 2 misreads it"
    # The author fixes it: a new revision, up for review again, the old verdict cleared.
    again = _save(decision, author, base=1, text="fixed better")
    assert again.status == CotCorrection.Status.SUBMITTED and again.reviewed_by is None and not again.reject_reason


def test_accepting_a_stale_revision_is_refused(decision, make_user):
    author, other = make_user("labeler"), make_user("labeler")
    _save(decision, author)
    _save(decision, author, base=1, text="changed meanwhile")
    with pytest.raises(CorrectionConflict):
        cot_correction_accept(correction=CotCorrection.objects.get(), by=other, base_revision=1)
    assert CotCorrection.objects.get().status == CotCorrection.Status.SUBMITTED


def test_review_buttons_for_a_second_labeler_only(decision, make_user):
    author = make_user("labeler")
    _save(decision, author)
    url = reverse("annotation:correction_edit", args=[decision.pk])
    review_url = reverse("annotation:correction_review", args=[decision.pk])
    author_client, other_client = Client(), Client()
    author_client.force_login(author)
    other_client.force_login(make_user("labeler"))
    assert 'id="correction-review"' not in author_client.get(url).content.decode()
    assert 'id="correction-review"' in other_client.get(url).content.decode()
    # The list and the screen say what the second labeler does there: review (both said "Edit" / "editing").
    listed = reverse("annotation:correction_list") + "?status=submitted"
    assert f'<a href="{url}">Review</a>' in other_client.get(listed).content.decode()
    assert f'<a href="{url}">Edit</a>' in author_client.get(listed).content.decode()
    assert "reviewing revision 1" in other_client.get(url).content.decode()

    resp = author_client.post(review_url, {"action": "accept", "base_revision": "1"}, follow=True)
    assert resp.redirect_chain[-1][0].startswith(url) and "another labeler" in resp.content.decode()
    resp = other_client.post(review_url, {"action": "reject", "base_revision": "1", "reason": "<b>wrong</b>"})
    assert resp.status_code == 302
    html = author_client.get(url).content.decode()
    assert "&lt;b&gt;wrong&lt;/b&gt;" in html and "Rejected" in html


def test_edit_form_saves_draft_or_submits(decision, client_as):
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    data = {f"stage-{s['key']}": s["text"] for s in decision.cot} | {"label": "正向", "base_revision": "0"}
    client.post(url, {**data, "action": "draft"})
    assert CotCorrection.objects.get().status == CotCorrection.Status.DRAFT
    client.post(url, {**data, "base_revision": "1", "action": "submit"})
    assert CotCorrection.objects.get().status == CotCorrection.Status.SUBMITTED


def test_list_filters_by_status(decision, policy_version, make_user, client_as):
    from tests.factories import DecisionFactory

    other = DecisionFactory(policy_version=policy_version, video__title="Untouched video")
    _save(decision, make_user("labeler"), submit=False)
    client = client_as("labeler")
    url = reverse("annotation:correction_list")
    drafts = client.get(url, {"status": "draft"}).content.decode()
    assert decision.video.title in drafts and "Untouched video" not in drafts
    none = client.get(url, {"status": "none"}).content.decode()
    assert "Untouched video" in none and decision.video.title not in none
    assert "Untouched video" not in client.get(url, {"status": "accepted"}).content.decode()
    assert other.video.title in client.get(url).content.decode()


def test_a_refused_rejection_redirects_back_so_a_reload_resends_nothing(decision, make_user):
    """Rejecting without a reason used to leave the browser on the POST address (a reload resent the
    form). Now every answer is a redirect to the correction screen, which says what is missing."""
    author, reviewer = make_user("labeler"), make_user("labeler")
    _save(decision, author)
    url = reverse("annotation:correction_edit", args=[decision.pk])
    review_url = reverse("annotation:correction_review", args=[decision.pk])
    client = Client()
    client.force_login(reviewer)

    resp = client.post(review_url, {"action": "reject", "base_revision": "1", "reason": "  "})
    assert resp.status_code == 302 and resp["Location"] == f"{url}#correction-review"
    html = client.get(url).content.decode()
    assert "Say why the correction is rejected" in html and 'id="correction-review"' in html
    assert client.get(url).content.decode().count("Say why") == 0  # the message is shown once
    assert CotCorrection.objects.get().status == CotCorrection.Status.SUBMITTED

    resp = client.post(review_url, {"action": "reject", "base_revision": "1", "reason": "Stage 2 misreads it"})
    assert resp.status_code == 302 and resp["Location"] == url
    first = CotCorrection.objects.get()
    assert first.status == CotCorrection.Status.REJECTED and first.reject_reason == "Stage 2 misreads it"
    assert "Rejected revision 1" in client.get(url).content.decode()

    # The same form sent again (a back-button resubmit): refused with a message, nothing recorded twice.
    resp = client.post(review_url, {"action": "reject", "base_revision": "1", "reason": "again"}, follow=True)
    assert "this one is rejected" in resp.content.decode()
    again = CotCorrection.objects.get()
    assert (again.reject_reason, again.reviewed_at) == ("Stage 2 misreads it", first.reviewed_at)


def test_a_reason_typed_for_a_stale_revision_is_put_back_into_the_form(decision, make_user):
    author, reviewer = make_user("labeler"), make_user("labeler")
    _save(decision, author)
    _save(decision, author, base=1, text="changed meanwhile")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    client = Client()
    client.force_login(reviewer)
    review_url = reverse("annotation:correction_review", args=[decision.pk])
    resp = client.post(
        review_url, {"action": "reject", "base_revision": "1", "reason": "Misses the <OCR>"}, follow=True
    )
    html = resp.content.decode()
    assert "saved revision 2 since you opened it" in html
    assert ">Misses the &lt;OCR&gt;</textarea>" in html
    assert ">Misses the" not in client.get(url).content.decode()  # put back once, not forever
    assert CotCorrection.objects.get().status == CotCorrection.Status.SUBMITTED


def test_the_second_labeler_sees_the_words_that_changed_not_the_whole_stage_twice(decision, make_user):
    """The review showed the model's stage struck out whole, then the correction whole: one sentence added to
    a long paragraph had to be found by reading both."""
    paragraph = " ".join(f"The speech at {n}.0s says «add me on wechat», matching a risk keyword." for n in range(10))
    decision.cot[1]["text"] = paragraph  # the analysis stage
    decision.save(update_fields=["cot"])
    _save(decision, make_user("labeler"), text=paragraph.replace("wechat", "WeChat", 1) + " The title asks for a DM.")
    reviewer = Client()
    reviewer.force_login(make_user("labeler"))
    html = reviewer.get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()
    review = html[html.index('id="correction-review"') : html.index("</section>", html.index('id="correction-review"'))]
    assert "<del>wechat</del><ins>WeChat</ins>" in review and "<ins> The title asks for a DM.</ins>" in review
    assert review.count("The speech at") < 4 and " … " in review  # the unchanged middle is elided, not repeated


def test_a_rewritten_sentence_reads_as_one_removal_and_one_addition(decision, make_user):
    """Walk hwalk19: a final judgment rewritten whole was shown in shreds around the few characters the two
    sentences happened to share: "<del>confidence 0</del><ins>a loan offered … number</ins>.<del>75.</del>"."""
    model = "Non-violative (正向): no policy rule is supported by the extracted evidence; confidence 0.75."
    decision.cot[1]["text"] = model
    decision.save(update_fields=["cot"])
    rewrite = "False promised benefits (虚假承诺福利): a loan offered tonight in exchange for a bank card number."
    _save(decision, make_user("labeler"), text=rewrite)
    review = _review_section(decision, make_user("labeler"))
    assert f"<del>{escape(model)}</del><ins>{escape(rewrite)}</ins>" in review
    # A long unchanged stretch between two edits still separates them.
    text = "The speech at 0.0s says add me on wechat, matching a risk keyword of private deals."
    decision.cot[1]["text"] = text
    decision.save(update_fields=["cot"])
    edited = text.replace("wechat", "WeChat").replace("deals.", "deals outside the app.")
    _save(decision, make_user("labeler"), text=edited, base=1)
    review = _review_section(decision, make_user("labeler"))
    assert "<del>wechat</del><ins>WeChat</ins>" in review and "<ins> outside the app</ins>" in review


def _review_section(decision, reviewer) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(reviewer)
    html = client.get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()
    start = html.index('id="correction-review"')
    return html[start : html.index("</section>", start)]


def test_the_second_labeler_sees_a_changed_label_beside_the_changed_stages(decision, make_user):
    """Seen in Chromium: a revision that rewrote one stage and moved the label from 夸大商品功效 to 违法犯罪 was
    reviewed from the stage diff alone; the new label, the part training reads, was not said anywhere."""
    _save(decision, make_user("labeler"), text="fixed analysis")  # label 正向; the model said 引导私下交易
    review = _review_section(decision, make_user("labeler"))
    assert "<ins>fixed</ins>" in review
    assert "Label" in review and "<del>引导私下交易</del>" in review and "<ins>正向</ins>" in review


def test_an_unchanged_label_is_not_listed_as_a_change(decision, make_user):
    cot_correction_save(
        decision=decision,
        author=make_user("labeler"),
        stages={"analysis": "fixed analysis"},
        label=decision.label,
        base_revision=0,
        submit=True,
    )
    review = _review_section(decision, make_user("labeler"))
    assert "<ins>fixed</ins>" in review and "<del>引导私下交易</del>" not in review


def test_the_saved_message_counts_changed_stages_in_words(decision, client_as):
    """Seen in Chromium: "Saved revision 1 as draft (1 stage(s) changed from the model)."."""
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    data = {f"stage-{s['key']}": s["text"] for s in decision.cot} | {"label": "正向", "base_revision": "0"}
    html = client.post(url, {**data, "action": "draft"}, follow=True).content.decode()
    assert "Saved revision 1 as draft (no stage text changed from the model; label 正向)." in html
    one = {**data, "stage-analysis": "fixed", "base_revision": "1", "action": "draft"}
    assert "(1 stage changed from the model)." in client.post(url, one, follow=True).content.decode()
    two = {**one, "stage-final_judgment": "fixed too", "base_revision": "2"}
    assert "(2 stages changed from the model)." in client.post(url, two, follow=True).content.decode()


def test_a_reason_typed_for_a_revision_reviewed_meanwhile_is_still_shown(decision, make_user):
    """Seen in Chromium: a second labeler typed a reason while another accepted the revision; Reject was
    refused ("this one is accepted") and the screen, with no review form any more, dropped the typed text."""
    author, first, second = make_user("labeler"), make_user("labeler"), make_user("labeler")
    _save(decision, author)
    cot_correction_accept(correction=CotCorrection.objects.get(), by=first, base_revision=1)
    client = Client()
    client.force_login(second)
    review_url = reverse("annotation:correction_review", args=[decision.pk])
    resp = client.post(
        review_url, {"action": "reject", "base_revision": "1", "reason": "Stage 2 <misreads>"}, follow=True
    )
    html = resp.content.decode()
    assert "this one is accepted" in html
    assert 'id="review-reason-unsent"' in html and ">Stage 2 &lt;misreads&gt;</textarea>" in html
    assert "Stage 2" not in client.get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()


def test_submitting_a_correction_says_what_happens_next(decision, client_as):
    """Walked at 1440x900 (hwalk15): "Submit for review" answered "Saved revision 2 as submitted (1 stage changed
    from the model)." above the same open form, with no word of who acts next."""
    client = client_as("labeler")
    url = reverse("annotation:correction_edit", args=[decision.pk])
    data = {f"stage-{s['key']}": s["text"] for s in decision.cot} | {"label": "正向", "base_revision": "0"}
    html = client.post(url, {**data, "stage-analysis": "fixed", "action": "submit"}, follow=True).content.decode()
    assert (
        "Submitted revision 1 for review (1 stage changed from the model): another labeler accepts or rejects it"
        in (html)
    )
    assert "as submitted" not in html


def test_accepting_says_what_follows_and_how_to_take_it_back(decision, make_user):
    """Walked (hui20): after Accept the page said "Accepted revision 2." and nothing else: was it in use now, did
    anything change for the model or the queues, how to undo it? The message says what the code does next."""
    author, reviewer = make_user("labeler"), make_user("labeler")
    cot_correction_save(
        decision=decision, author=author, stages={"analysis": "fixed"}, label="夸大商品功效", base_revision=0
    )
    client = Client()
    client.force_login(reviewer)
    page = client.post(
        reverse("annotation:correction_review", args=[decision.pk]),
        {"action": "accept", "base_revision": 1},
        follow=True,
    ).content.decode()
    said = page.split('class="msg-success">', 1)[1].split("</li>", 1)[0]
    assert said.startswith("Accepted revision 1: it is this decision&#x27;s reasoning for training now."), said
    assert "The next SFT or DPO dataset built" in said and "datasets built before keep what they had" in said
    assert "model&#x27;s decision itself does not change" in said
    assert f"its label 夸大商品功效 beside the model&#x27;s ({decision.label})" in said
    assert "To take it back, edit it here and save" in said
    # As said: a save after the acceptance is a new revision that is no longer accepted (out of later builds).
    edited = _save(decision, author, base=1, text="taken back")
    assert edited.revision == 2 and edited.status == CotCorrection.Status.SUBMITTED and edited.reviewed_by is None


def test_the_labelers_home_counts_their_rejected_corrections_to_rework(decision, make_user):  # type: ignore[no-untyped-def]
    """Walk hwalk22: once a second labeler rejected a correction, the author's home page counted it nowhere (not a
    draft, not waiting, not uncorrected): they were never told it came back. It is counted, linking to the list."""
    author, reviewer = make_user("labeler"), make_user("labeler")
    correction = _save(decision, author)
    cot_correction_reject(correction=correction, by=reviewer, base_revision=correction.revision, reason="Cite it.")
    client = Client()
    client.force_login(author)

    home = client.get("/").content.decode()
    link = reverse("annotation:correction_list") + "?status=rejected&amp;by=me"
    assert f'<dt>Yours rejected, to rework</dt><dd><a href="{link}">1</a></dd>' in home
    listed = client.get(link.replace("&amp;", "&")).content.decode()
    assert reverse("annotation:correction_edit", args=[decision.pk]) in listed


def test_the_videos_page_says_an_accepted_correction_relabelled_it(decision, make_user):  # type: ignore[no-untyped-def]
    """Walk hwalk22: the review screen says "An accepted CoT correction labels this video …", but the video's own page
    showed the model's label alone under Outcome. It says the correction's label too (a link to it for labelers)."""
    correction = cot_correction_save(
        decision=decision,
        author=make_user("labeler"),
        stages={"final_judgment": "Exaggerated product claims."},
        label="夸大商品功效",
        base_revision=0,
        submit=True,
    )
    cot_correction_accept(correction=correction, by=make_user("labeler"), base_revision=correction.revision)
    url = reverse("moderation:video_detail", args=[decision.video_id])
    said = "An accepted correction labels it <strong>Exaggerated product claims</strong> <small>(夸大商品功效)</small>"
    link = reverse("annotation:correction_edit", args=[decision.pk])
    for role, linked in (("moderator", False), ("admin", True)):
        client = Client()
        client.force_login(make_user(role))
        html = client.get(url).content.decode()
        assert said in html and (f'<a href="{link}">see the correction</a>' in html) == linked, role


def test_a_reviewer_sees_the_authors_stage_texts_read_only_and_the_heading_in_one_style(decision, make_user):
    """Walked (hwalk22 a05, l03): a second labeler reviewing a correction saw the stage textareas editable (and
    "Submit for review") under Accept/Reject; the heading's "of" was heading-sized beside a small "video #5"."""
    import re

    author = make_user("labeler")
    _save(decision, author)
    url = reverse("annotation:correction_edit", args=[decision.pk])
    reviewer, writer = Client(), Client()
    reviewer.force_login(make_user("labeler"))
    writer.force_login(author)
    page = reviewer.get(url).content.decode()
    stages = re.findall(r'<textarea name="stage-[^"]+"[^>]*>', page)
    assert stages and all(" readonly" in t for t in stages)
    assert re.search(r'<select name="label" disabled>', page)
    assert 'value="submit"' not in page and 'value="draft"' not in page and 'id="review-read-only"' in page
    assert '<small class="hint heading-sub">of <span class="video-number"' in page
    # The author still edits their own.
    own = writer.get(url).content.decode()
    assert not any(" readonly" in t for t in re.findall(r'<textarea name="stage-[^"]+"[^>]*>', own))
    assert 'value="submit"' in own
