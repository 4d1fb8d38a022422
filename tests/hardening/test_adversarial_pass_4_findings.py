"""Findings of the fourth adversarial pass (issue hadv13), each pinned by a test that fails without its fix."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Adjudication
from moderation.media.models import Video
from moderation.media.shield import REVEAL_SESSION_KEY
from moderation.reproduction.models import ReproCandidate
from moderation.tagging.models import Tag, TagProposal, TagProposalSighting
from tests.factories import DecidedVideoFactory, UserFactory

pytestmark = pytest.mark.django_db

HUGE = "9" * 31  # a LIMIT of page × rows past PostgreSQL's bigint


def _client(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(role=role))
    return client


def test_a_page_number_past_any_lists_end_is_its_last_page_not_a_500(policy_version):
    """``?page=10**30`` on a list paged by ``WindowPaginator`` asked PostgreSQL for LIMIT 10**32 rows: "bigint out
    of range", a 500 on the video list, the pair queues, the labeling lists, a proposal's sightings and the API. A
    page past the end is the last page (an HTML list) or the API's "Invalid page." (404), as any page past the end."""
    video = DecidedVideoFactory(title="Only video")
    other = DecidedVideoFactory()
    ReproCandidate.objects.create(video=video, original=other, score=0.9)
    Adjudication.objects.create(video=video, decision=video.decisions.get(), kind="reported_pass", reason="r")
    proposal = TagProposal.objects.create(name="odd phrase", key="odd-phrase")
    TagProposalSighting.objects.create(proposal=proposal, video=video, phrase="odd phrase")
    admin = _client("admin")
    pages = [
        reverse("moderation:video_list"),
        reverse("moderation:repro_queue"),
        reverse("moderation:repro_reviewed"),
        reverse("moderation:video_repro_pairs", args=[video.pk]),
        reverse("annotation:adjudication_list"),
        reverse("annotation:correction_list"),
        reverse("annotation:tag2cot_list"),
        reverse("moderation:tag_proposal_sightings", args=[proposal.pk]),
    ]
    for url in pages:
        last = admin.get(f"{url}?page=1")
        assert last.status_code == 200, url
        far = admin.get(f"{url}?page={HUGE}")
        assert far.status_code == 200, (url, far.status_code)
        assert far.content.count(b"<tr") == last.content.count(b"<tr"), url  # the same (last) page
    assert b"Only video" in admin.get(f"{reverse('moderation:video_list')}?page={HUGE}").content

    api = admin.get(f"{reverse('moderation:api-video-list')}?page={HUGE}")
    assert api.status_code == 404 and api.json()["detail"] == "Invalid page.", api.content
    assert admin.get(f"{reverse('moderation:api-video-list')}?page=1").json()["count"] == 2


def test_the_reveal_toggle_goes_back_to_the_queue_when_its_next_is_not_a_path(client_as):
    """The reveal toggle's form sends the page it was on as ``next``: a value that is no path ("-1", "NaN", a
    URL name) was handed to ``redirect``, which took it for a view to reverse, a 500. Anything but a path of this
    site goes back to the queue; a path still goes back to it."""
    client = client_as("moderator")
    for odd in ("-1", "NaN", "1e309", "9" * 40, "moderation:queue", "javascript:alert(1)", "//evil.example/x"):
        response = client.post(reverse("moderation:review_reveal"), {"reveal": "1", "next": odd})
        assert response.status_code == 302, (odd, response.status_code)
        assert response["Location"] == reverse("moderation:queue"), odd
    back = client.post(reverse("moderation:review_reveal"), {"reveal": "0", "next": "/tags/?set=a"})
    assert back["Location"] == "/tags/?set=a"
    assert client.session[REVEAL_SESSION_KEY] is False


def test_an_api_token_cannot_renew_or_replace_itself(make_user):
    """``POST /api/token/ {"rotate": true}`` sent with the token itself gave a new token valid 90 more days and
    refused the owner's key: whoever held a leaked token kept it alive forever without the password (the expiry
    meant nothing) and locked the owner out. A token is got with the signed-in session only."""
    session = Client()
    session.force_login(make_user("labeler"))
    issued = session.post("/api/token/").json()
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {issued['token']}")
    for body in ({"rotate": "true"}, {}):
        refused = with_token.post("/api/token/", body)
        assert refused.status_code == 403, refused.content
        assert "cannot renew or replace itself" in refused.json()["detail"]
    assert with_token.get("/api/decisions/").status_code == 200  # the owner's key still works, unchanged
    assert session.post("/api/token/").status_code == 409  # kept; its key is not stored to give again
    rotated = session.post("/api/token/", {"rotate": "true"}).json()["token"]  # the session still rotates it
    assert rotated != issued["token"] and with_token.get("/api/decisions/").status_code == 401


def test_an_upload_named_with_a_long_chinese_title_is_stored_not_a_500(client_as):
    """The stored name kept 80 characters of the uploaded file's name: 80 CJK characters are 240 bytes of UTF-8,
    and with the hash prefix past the 255 bytes a filesystem allows a name ("File name too long"), a 500 for an
    upload named after its Chinese title. The stored name keeps at most 150 bytes of it; the original name is kept
    whole on the video."""
    name = "视频标题" * 50 + ".mp4"
    upload = SimpleUploadedFile(name, b"\x00\x00\x00\x18ftypmp42" + b"c" * 512)
    response = client_as("moderator").post(reverse("moderation:video_upload"), {"title": "", "file": upload})
    assert response.status_code == 302, response.status_code
    video = Video.objects.get()
    stored = PurePosixPath(video.file.name).name
    assert len(stored.encode()) <= 255 and stored.endswith(".mp4") and "视频标题" in stored, stored
    assert video.original_filename == name and video.file.storage.exists(video.file.name)
    assert video.status == Video.Status.UPLOADED


def test_import_tags_given_a_folder_or_an_unreadable_file_says_so(tmp_path):
    """``manage.py import_tags <folder>`` (a path typed one level short) ended in an IsADirectoryError traceback;
    a file the command may not read in a PermissionError one. Both are a plain "Cannot read …" and nothing is
    imported, as a missing file already was."""
    folder = tmp_path / "vocabulary"
    folder.mkdir()
    for args in ([str(folder)], ["--hierarchy", str(folder)]):
        with pytest.raises(CommandError) as refused:
            call_command("import_tags", *args)
        assert str(refused.value) == f"Cannot read {folder}: Is a directory.", refused.value
    assert not Tag.objects.exists()


def test_the_commands_say_what_is_wrong_with_their_arguments_never_a_traceback(tmp_path, settings):
    """Each of these ended in a traceback: a manifest path naming a folder (IsADirectoryError), a negative
    ``--min-events`` (the run row's check constraint, IntegrityError), an integration name holding a NUL
    (DataError), an export folder that cannot be made (FileNotFoundError); and ``--eval-share`` 2 or NaN was taken
    silently where the training screen allows 0 to 0.9. Each is now a plain refusal, and nothing is recorded."""
    from moderation.tagging.models import TagRankerTraining

    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    folder = tmp_path / "manifests"
    folder.mkdir()
    refusals = {
        ("ingest_manifest", str(folder)): f"{folder} is not a file: a manifest is a JSONL file",
        ("train_tag_ranker", "--min-events", "-5"): "a count, 0 or more; -5 was asked. Nothing was trained.",
        ("rotate_integration_token", "a\x00b"): "No integration is named",
        ("export_tag_events", "/proc/no-such/x"): "Cannot write to /proc/no-such/x: No such file or directory.",
        ("export_tag_events", str(tmp_path / "out"), "--eval-share", "2"): "--eval-share is a share from 0 to 0.9",
        ("export_tag_events", str(tmp_path / "out"), "--eval-share", "nan"): "--eval-share is a share from 0 to 0.9",
    }
    for args, said in refusals.items():
        with pytest.raises(CommandError) as refused:
            call_command(*args)
        assert said in str(refused.value), (args, str(refused.value))
    assert not TagRankerTraining.objects.exists() and not (tmp_path / "out").exists()
    call_command("export_tag_events", str(tmp_path / "out"), "--eval-share", "0.2")  # in bounds: written
    assert (tmp_path / "out" / "train.jsonl").exists()


def test_a_reason_or_note_written_for_another_person_is_held_to_a_notes_limit(policy_version, make_user):
    """A reviewer's note is refused past 4,000 characters, but the reason to escalate (drawn on the senior
    reviewer's item), the reason a correction is sent back (its author's screen) and an adjudication's note were
    unbounded: a 9 MB form was stored whole and drawn on every render. Each is refused with the limit now, and
    the item is left as it was (still claimed, still submitted, still open)."""
    from annotation.errors import AnnotationError
    from annotation.models import CotCorrection
    from annotation.services import adjudication_decide, cot_correction_reject
    from moderation.errors import ModerationError
    from moderation.review.models import ReviewQueue, ReviewTask
    from moderation.review.services import REVIEW_NOTE_MAX_CHARS, review_claim_next, review_escalate
    from tests.factories import CotCorrectionFactory, DecisionFactory

    too_long = "x" * (REVIEW_NOTE_MAX_CHARS + 1)
    senior = ReviewQueue.objects.create(slug="senior", name="Senior", routes_new_decisions=False)
    first_line = ReviewQueue.objects.create(slug="first-line", name="First line", escalation_queue=senior)
    task = ReviewTask.objects.create(decision=DecisionFactory(policy_version=policy_version), queue=first_line)
    alice = make_user("moderator")
    assert review_claim_next(user=alice, queue=first_line) == task
    with pytest.raises(ModerationError, match="The reason is 4,001 characters long; a reason holds at most 4,000"):
        review_escalate(task=task, user=alice, reason=too_long)
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED and not senior.tasks.exists()
    assert review_escalate(task=task, user=alice, reason="x" * REVIEW_NOTE_MAX_CHARS).queue == senior

    correction = CotCorrectionFactory(decision__policy_version=policy_version)
    with pytest.raises(AnnotationError, match="a reason holds at most 4,000"):
        cot_correction_reject(
            correction=correction, by=make_user("labeler"), base_revision=correction.revision, reason=too_long
        )
    correction.refresh_from_db()
    assert correction.status == CotCorrection.Status.SUBMITTED and correction.reject_reason == ""

    video = DecidedVideoFactory()
    adjudication = Adjudication.objects.create(
        video=video, decision=video.decisions.get(), kind="reported_pass", reason="r"
    )
    with pytest.raises(AnnotationError, match="a note holds at most 4,000"):
        adjudication_decide(adjudication=adjudication, by=alice, label="正向", note=too_long)
    adjudication.refresh_from_db()
    assert adjudication.status != Adjudication.Status.DECIDED and adjudication.note == ""


def test_an_address_with_an_open_bracket_or_a_port_past_65535_is_refused_in_words(client_as, policy_version):
    """Python's URL parser raises on an IPv6 bracket left open ("http://[::1") and on a port past 65535, after
    the checks that let them through: the Label Studio export's media address and a webhook endpoint's address
    were each a 500. Each is refused with the form's reason now, and no endpoint is made."""
    from moderation.integrations.models import WebhookEndpoint
    from moderation.integrations.services import integration_create

    labeler = client_as("labeler")
    for address in ("http://[::1", "http://[::1]:99999", "http://workbench:99999"):
        url = f"{reverse('annotation:labelstudio_export')}?what=tags&tags-which=both&tags-base_url={address}"
        response = labeler.get(url)
        assert response.status_code == 400, (address, response.status_code)
        assert "Not a web address" in response.content.decode(), address

    integration, _token = integration_create(name="platform")
    admin = client_as("admin")
    for address in ("http://[::1]:99999/", "https://receiver.example:99999/hook", "https://receiver.example:0/"):
        response = admin.post(
            reverse("moderation:webhook_endpoint_add", args=[integration.pk]),
            {"url": address, "event_types": ["label.final"]},
        )
        assert response.status_code == 400, (address, response.status_code)
        assert "a port is 1 to 65535" in response.content.decode(), address
    assert not WebhookEndpoint.objects.exists()


def test_a_feedback_timestamp_with_an_offset_postgresql_refuses_is_read_in_utc_never_a_500(policy_version):
    """Python reads offsets up to ±23:59, PostgreSQL stores up to ±15:59: one event stamped "…-23:59" failed the
    whole batch with a 500 (DataError), the platform's good events with it. The timestamp is read in UTC, as the
    API's ``since`` is; one that leaves the calendar when moved to UTC is that row's error."""
    from moderation.feedback.models import FeedbackEvent
    from moderation.integrations.services import integration_create

    _integration, token = integration_create(name="platform")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    video = DecidedVideoFactory()
    rows = [
        {"type": "report", "event_id": event_id, "video_id": video.pk, "timestamp": stamp}
        for event_id, stamp in (
            ("far-offset", "2026-01-01T00:00:00-23:59"),
            ("before-year-1", "0001-01-01T00:00:00+23:59"),
            ("plain", "2026-01-01T00:00:00Z"),
        )
    ]
    response = platform.post("/api/feedback/events/", rows, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert response.json()["errors"] == [{"index": 1, "event_id": "before-year-1", "error": "timestamp out of range"}]
    stored = FeedbackEvent.objects.get(event_id="far-offset")
    assert stored.occurred_at.isoformat() == "2026-01-01T23:59:00+00:00"


def test_the_rubric_editor_reads_at_most_its_row_limit_of_tags_in_all(client_as, policy_version):
    """The structured editor capped each count field at 500, so a post saying 500 categories of 500 tags each
    (a few kilobytes) made it build and draw 250,000 rows: one request held a web worker for minutes. The tag
    rows are capped in all; the page comes back with the rows read."""
    from moderation.policies.editor import MAX_ROWS

    data = {"categories": "500", "mode": "structured", "action": "add_category"}
    data.update({f"c{i}-tags": "500" for i in range(500)})
    response = client_as("policy_editor").post(reverse("moderation:policy_edit", args=[policy_version.policy_id]), data)
    assert response.status_code == 200
    rows = response.context["rows"]
    # One row past the limit is read (so that saving says the limit), and the new category's row.
    assert len(rows) == 501 and sum(len(row.tags) for row in rows) == MAX_ROWS + 2


def test_a_taxonomy_pasted_as_json_is_held_to_the_editors_row_limit_too(client_as, policy_version):
    """The structured editor reads at most 500 tag rows in all; a taxonomy pasted in the JSON editor was bounded only
    by the 10 MB body limit (tens of thousands of tags validated, diffed and drawn in one request). The one limit
    lives with the taxonomy's validator: past it, the JSON draft is refused with one message saying the limit, beside
    the JSON field; at the limit it saves."""
    import json

    from moderation.policies.editor import MAX_ROWS
    from moderation.policies.models import PolicyVersion

    def taxonomy(tags: int) -> str:
        return json.dumps(
            [
                {
                    "key": f"c{c}",
                    "name": f"Category {c}",
                    "tags": [
                        {"key": f"c{c}-t{t}", "name": f"Tag {t}", "keywords": [f"word {c}-{t}"]}
                        for t in range(tags // 10)
                    ],
                }
                for c in range(10)
            ]
        )

    editor = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy_id])
    versions = PolicyVersion.objects.filter(policy=policy_version.policy).count()

    response = editor.post(url, {"mode": "json", "taxonomy_json": taxonomy(MAX_ROWS + 10), "base": policy_version.pk})
    assert response.status_code == 400
    assert response.context["errors"] == [
        f"The taxonomy has 10 categories and {MAX_ROWS + 10} tags; a policy holds at most {MAX_ROWS} categories "
        f"and {MAX_ROWS} tags in all. Remove some, or split them into another policy."
    ]
    page = response.content.decode()
    assert (
        'name="taxonomy_json" rows="24" spellcheck="false" class="code" aria-label="Taxonomy as JSON" data-unsent-not-blank aria-invalid="true"'
        in page
    )
    assert PolicyVersion.objects.filter(policy=policy_version.policy).count() == versions

    # The structured editor says the same past its limit, rather than saving without the rows past it.
    structured = {"mode": "structured", "action": "save", "base": policy_version.pk, "categories": "1"}
    structured |= {"c0-key": "c0", "c0-name": "Category 0", "c0-tags": str(MAX_ROWS + 10)}
    # Keys only: Django refuses a form of over 1,000 fields before the editor reads it.
    structured |= {f"c0t{t}-key": f"c0-t{t}" for t in range(MAX_ROWS + 10)}
    response = editor.post(url, structured)
    assert response.status_code == 400
    assert response.context["errors"] == [
        f"The taxonomy has 1 category and {MAX_ROWS + 1} tags; a policy holds at most {MAX_ROWS} categories "
        f"and {MAX_ROWS} tags in all. Remove some, or split them into another policy."
    ]
    assert PolicyVersion.objects.filter(policy=policy_version.policy).count() == versions

    response = editor.post(url, {"mode": "json", "taxonomy_json": taxonomy(MAX_ROWS), "base": policy_version.pk})
    assert response.status_code == 302, response.context and response.context["errors"]
    assert PolicyVersion.objects.filter(policy=policy_version.policy).count() == versions + 1
