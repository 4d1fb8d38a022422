"""A failed video's "Retry" on its page: the stage it stopped at is queued again (inference, or the media
pipeline), once for a double click, recorded in the audit log; refusals say why; only reviewers may."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.inference.tasks import run_inference
from moderation.media.models import Video
from moderation.models import AuditEvent, Decision
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def _queued(callbacks) -> list[tuple[str, list]]:  # type: ignore[no-untyped-def]
    return [(cb.args[0], cb.args[2]) for cb in callbacks]


def test_a_moderator_retries_failed_inference_once_and_the_video_is_decided(
    policy_version, make_user, django_capture_on_commit_callbacks
) -> None:
    user = make_user("moderator")
    video = VideoFactory(
        file="",
        title="加微信私聊 低价出货",
        status=Video.Status.FAILED,
        stage=Video.Stage.INFERENCE,
        error="Model inference failed: CUDA out of memory",
        created_by=user,  # never decided, so never routed: open to its uploader (and admins) only
    )
    moderator = Client()
    moderator.force_login(user)
    page = moderator.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    assert 'id="video-retry"' in page and "Retry model inference" in page

    url = reverse("moderation:video_retry", args=[video.pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = moderator.post(url, follow=True).content.decode()
        second = moderator.post(url, follow=True).content.decode()  # a double click

    assert "Model inference of" in first and "is queued again" in first
    assert "is not failed" in second and "nothing to retry" in second
    assert _queued(callbacks) == [("moderation.inference.tasks.run_inference", [video.pk])]
    video.refresh_from_db()
    assert video.status == Video.Status.READY and video.error == ""
    assert 'id="video-retry"' not in second
    event = AuditEvent.objects.get(action="video.retry", object_id=str(video.pk))
    assert event.actor_id == user.pk and event.payload["stage"] == "inference"
    assert event.payload["error"] == "Model inference failed: CUDA out of memory"

    assert run_inference(video.pk) is not None  # what the infer worker does with the message
    assert Decision.objects.filter(video=video).count() == 1


def test_a_media_failure_is_retried_from_its_stage_unless_the_file_is_gone(
    client_as, django_capture_on_commit_callbacks
) -> None:
    video = VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.ASR, error="Processing failed: boom")
    admin = client_as("admin")
    url = reverse("moderation:video_retry", args=[video.pk])
    video.file.storage.delete(video.file.name)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refused = admin.post(url, follow=True).content.decode()

    assert "is missing from media storage" in refused and "Upload the video again" in refused
    assert callbacks == [] and Video.objects.get(pk=video.pk).status == Video.Status.FAILED

    other = VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.ASR, error="Processing failed: boom")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = admin.post(reverse("moderation:video_retry", args=[other.pk]), follow=True).content.decode()
    assert "Processing (from speech to text) of" in done
    assert _queued(callbacks) == [("moderation.media.tasks.process_video", [other.pk])]
    assert Video.objects.get(pk=other.pk).status == Video.Status.UPLOADED


def test_only_reviewers_may_retry(make_user, client_as) -> None:
    video = VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.INFERENCE, error="x")
    assert client_as("labeler").post(reverse("moderation:video_retry", args=[video.pk])).status_code == 403
    assert client_as("admin").post(reverse("moderation:video_retry", args=[999999])).status_code == 404
    assert Video.objects.get(pk=video.pk).status == Video.Status.FAILED


def test_a_video_that_failed_before_probing_does_not_claim_it_has_no_audio_track(make_user) -> None:
    """Walked in Chromium: an upload that was not a video ("moov atom not found") said "Audio: no audio track"
    beside "Duration: —": nothing had read the file, so whether it has sound is unknown."""
    user = make_user("moderator")
    failed = VideoFactory(
        file="",
        status=Video.Status.FAILED,
        stage=Video.Stage.PROBE,
        error="This file is not a playable video.",
        duration=None,
        has_audio=False,
        created_by=user,
    )
    silent = VideoFactory(file="", duration=4.0, has_audio=False, created_by=user)
    client = Client()
    client.force_login(user)

    def audio(video: Video) -> str:
        page = client.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
        return page.split("<dt>Audio</dt><dd>", 1)[1].split("</dd>", 1)[0]

    assert audio(failed) == "—"
    assert audio(silent) == "no audio track"  # probed, and no audio stream found


def test_a_file_that_is_not_a_video_offers_dismiss_not_retry(make_user, tmp_path, django_capture_on_commit_callbacks):
    """A text file renamed .mp4 fails its probe for good: its page offered "Retry processing", which could never
    succeed. It now says it is not a video and offers Dismiss, which takes it off the ops page's failed count;
    Retry is refused with the reason, and a failure a retry may cure keeps its Retry."""
    from moderation.media.ingest import video_ingest
    from moderation.media.pipeline import video_process

    notes = tmp_path / "notes.mp4"
    notes.write_text("Meeting notes\n" * 40)
    user = make_user("moderator")
    video = video_ingest(path=notes, title="Renamed notes", created_by=user)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.error_kind) == (Video.Status.FAILED, Video.ErrorKind.NOT_VIDEO)
    transient = VideoFactory(
        file="", status=Video.Status.FAILED, stage=Video.Stage.ASR, error="Processing failed: boom", created_by=user
    )
    client = Client()
    client.force_login(user)
    admin = Client()
    admin.force_login(make_user("admin"))
    page = client.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    assert "Not a video — cannot be processed." in page and 'id="video-retry"' not in page
    assert 'id="video-dismiss"' in page
    other = client.get(reverse("moderation:video_detail", args=[transient.pk])).content.decode()
    assert 'id="video-retry"' in other and 'id="video-dismiss"' not in other
    ops = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "2</strong> failed videos" in ops and "1 of them is not a video" in ops

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refused = client.post(reverse("moderation:video_retry", args=[video.pk]), follow=True).content.decode()
    assert "is not a video" in refused and "processing it again cannot succeed" in refused
    assert callbacks == [] and Video.objects.get(pk=video.pk).status == Video.Status.FAILED

    url = reverse("moderation:video_dismiss", args=[video.pk])
    done = client.post(url, follow=True).content.decode()
    again = client.post(url, follow=True).content.decode()  # a double click
    assert "is dismissed" in done and "was dismissed already" in again
    assert "Dismissed " in again and 'id="video-dismiss"' not in again
    event = AuditEvent.objects.get(action="video.dismiss", object_id=str(video.pk))
    assert event.actor_id == user.pk
    ops = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "1</strong> failed video " in ops and "not a video" not in ops.split('id="ops-failed-dismissed"')[0]
    assert "1 more dismissed by an operator" in ops
    # A failure a retry may cure cannot be dismissed: it has Retry.
    refused = client.post(reverse("moderation:video_dismiss", args=[transient.pk]), follow=True).content.decode()
    assert "nothing to dismiss" in refused


def test_a_damaged_video_offers_dismiss_not_retry(make_user, tmp_path, django_capture_on_commit_callbacks):
    """A video cut off during upload fails to decode the same way every time: its page said "Retry processing",
    which could never succeed. It now says the file is damaged and to upload it again, and offers Dismiss."""
    from moderation.media.demo import synthesize_video
    from moderation.media.ingest import video_ingest
    from moderation.media.pipeline import video_process

    whole = synthesize_video(tmp_path / "whole.mp4", title="Whole", size=(320, 180), min_seconds=3, max_seconds=3)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:4000])  # its index at the start (faststart), the pictures cut off
    user = make_user("moderator")
    video = video_ingest(path=cut, title="Cut off", created_by=user)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert (video.status, video.error_kind) == (Video.Status.FAILED, Video.ErrorKind.DAMAGED), video.error
    client = Client()
    client.force_login(user)
    page = client.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    assert "This file is damaged — upload it again." in page
    assert 'id="video-retry"' not in page and 'id="video-dismiss"' in page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refused = client.post(reverse("moderation:video_retry", args=[video.pk]), follow=True).content.decode()
    assert "this file is damaged — upload it again" in refused
    assert callbacks == [] and Video.objects.get(pk=video.pk).status == Video.Status.FAILED

    done = client.post(reverse("moderation:video_dismiss", args=[video.pk]), follow=True).content.decode()
    assert "is dismissed" in done
    assert Video.objects.get(pk=video.pk).failure_dismissed_by == user


def test_the_ops_page_promises_a_retry_only_to_failed_videos_a_retry_may_cure(make_user):
    """Walked: an uploaded file that is not a video was counted among the failed videos that "never reached a
    decision … its uploader or an admin retries it", and the next line said no retry can help it. A file that is
    not a video or is damaged is said as such only; the retry sentence counts the failures a retry may cure."""
    user = make_user("moderator")
    admin = Client()
    admin.force_login(make_user("admin"))
    for kind in Video.FILE_FAULT_KINDS:
        VideoFactory(file="", status=Video.Status.FAILED, error_kind=kind, error="Not a video", created_by=user)
    ops = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "2</strong> failed videos" in ops and "2 of them are not videos or are damaged" in ops
    assert 'id="ops-failed-undecided"' not in ops and "retries it" not in ops and "retry it" not in ops

    VideoFactory(file="", status=Video.Status.FAILED, stage=Video.Stage.ASR, error="Processing failed: boom")
    ops = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    said = ops.split('id="ops-failed-undecided">')[1].split("</p>")[0]
    assert said.startswith("1 of them never reached a decision and may pass on a retry, 1 with no uploader")
    assert "one with no uploader waits for an admin to retry it" in said
    assert "2 of them are not videos or are damaged" in ops
