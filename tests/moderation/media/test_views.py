"""The video list, upload and detail screens, as a browser (and htmx) sees them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db

LIST = reverse("moderation:video_list")
UPLOAD = reverse("moderation:video_upload")


def _uploader(make_user):  # type: ignore[no-untyped-def]
    """A moderator and their client: a video not decided (so not routed) yet is open to its uploader only."""
    from django.test import Client

    user = make_user("moderator")
    client = Client()
    client.force_login(user)
    return user, client


def test_anonymous_is_sent_to_login(client) -> None:  # type: ignore[no-untyped-def]
    for url, method in ((LIST, client.get), (UPLOAD, client.post)):
        response = method(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_labeler_may_not_list_or_upload(client_as) -> None:  # type: ignore[no-untyped-def]
    labeler = client_as("labeler")
    upload = SimpleUploadedFile("a.mp4", b"data", content_type="video/mp4")

    assert labeler.get(LIST).status_code == 403
    assert labeler.post(UPLOAD, {"title": "x", "file": upload}).status_code == 403
    assert not Video.objects.exists()


@pytest.mark.integration
def test_moderator_uploads_a_video_and_sees_it_listed(client_as, speech_clip: Path) -> None:  # type: ignore[no-untyped-def]
    moderator = client_as("moderator")
    upload = SimpleUploadedFile("deal.mp4", speech_clip.read_bytes(), content_type="video/mp4")

    response = moderator.post(UPLOAD, {"title": "Cheap phones <b>now</b>", "file": upload})

    assert response.status_code == 302
    video = Video.objects.get()
    assert video.created_by is not None and video.created_by.groups.filter(name="moderator").exists()
    assert video.original_filename == "deal.mp4"
    page = moderator.get(LIST).content.decode()
    assert "Cheap phones &lt;b&gt;now&lt;/b&gt;" in page  # user text is escaped
    assert "queued for processing" in page
    assert 'hx-trigger="every 2s"' in page  # an uploaded video is in flight: the table polls


def test_upload_without_a_file_shows_a_form_error(client_as) -> None:  # type: ignore[no-untyped-def]
    response = client_as("moderator").post(UPLOAD, {"title": "nothing"})

    assert response.status_code == 400
    assert "Choose a video file to upload." in response.content.decode()
    assert not Video.objects.exists()


def test_upload_over_the_limit_shows_a_form_error(client_as, settings) -> None:  # type: ignore[no-untyped-def]
    settings.WORKBENCH_UPLOAD_MAX_BYTES = 1024 * 1024
    moderator = client_as("moderator")

    slightly = SimpleUploadedFile("big.mp4", b"x" * (1024 * 1024 + 10), content_type="video/mp4")
    response = moderator.post(UPLOAD, {"title": "big", "file": slightly})
    assert response.status_code == 400
    assert "larger than the upload limit of 1 MB" in response.content.decode()

    far = SimpleUploadedFile("huge.mp4", b"x" * (2 * 1024 * 1024), content_type="video/mp4")
    response = moderator.post(UPLOAD, {"title": "huge", "file": far})
    assert response.status_code == 413  # refused before the body is read
    assert "larger than the upload limit of 1 MB" in response.content.decode()
    assert not Video.objects.exists()


def test_list_polls_only_while_something_is_processing(make_user) -> None:  # type: ignore[no-untyped-def]
    user, moderator = _uploader(make_user)
    processing = VideoFactory(status=Video.Status.PROCESSING, stage=Video.Stage.ASR, progress=55, created_by=user)

    partial = moderator.get(LIST, headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert "<html" not in body  # just the rows partial
    assert 'hx-trigger="every 2s"' in body
    assert "55%" in body and "Speech to text" in body

    Video.objects.filter(pk=processing.pk).update(status=Video.Status.READY, progress=100)
    body = moderator.get(LIST, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in body
    assert "Ready" in body


@pytest.mark.integration
def test_detail_shows_player_keyframes_and_transcript_that_seek(make_user, speech_clip: Path) -> None:  # type: ignore[no-untyped-def]
    user, moderator = _uploader(make_user)
    video = video_ingest(path=speech_clip, title="Private deal", created_by=user)
    video_process(video_id=video.pk)
    video.refresh_from_db()

    page = moderator.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()

    assert f'<video data-player src="{video.file.url}"' in page
    keyframes = list(video.keyframes.all())
    assert page.count("data-seek=") == len(keyframes) + video.segments.count()
    assert keyframes[0].image.url in page
    assert page.count('class="selected"') == sum(k.selected for k in keyframes)
    assert video.segments.first().text in page
    # The player's source is served, with ranges, to the signed-in moderator.
    media = moderator.get(video.file.url, headers={"Range": "bytes=0-99"})
    assert media.status_code == 206
    assert b"".join(media.streaming_content) == speech_clip.read_bytes()[:100]


def test_detail_status_partial_reloads_the_page_when_processing_ends(make_user) -> None:  # type: ignore[no-untyped-def]
    user, moderator = _uploader(make_user)
    video = VideoFactory(status=Video.Status.PROCESSING, stage=Video.Stage.KEYFRAMES, created_by=user)
    url = reverse("moderation:video_detail", args=[video.pk]) + "?was=in_flight"

    first = moderator.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in first.content.decode()
    assert "HX-Refresh" not in first

    Video.objects.filter(pk=video.pk).update(status=Video.Status.READY)
    assert moderator.get(url, headers={"HX-Request": "true"})["HX-Refresh"] == "true"


def test_detail_is_closed_to_labelers(client_as) -> None:  # type: ignore[no-untyped-def]
    video = VideoFactory()
    assert client_as("labeler").get(reverse("moderation:video_detail", args=[video.pk])).status_code == 403


@pytest.mark.integration
def test_uploaded_text_file_fails_with_a_message_on_the_list_page(client_as, celery_worker) -> None:  # type: ignore[no-untyped-def]
    moderator = client_as("moderator")
    text = SimpleUploadedFile("notes.mp4", b"Meeting notes, not a video.\n" * 20, content_type="video/mp4")

    assert moderator.post(UPLOAD, {"title": "My notes", "file": text}).status_code == 302

    video = _wait_for(lambda: Video.objects.filter(status=Video.Status.FAILED).first())
    assert video.error.startswith("This file is not a playable video")
    page = moderator.get(LIST).content.decode()
    assert "My notes" in page
    assert "This file is not a playable video" in page
    assert 'class="status-failed"' in page
    assert "hx-trigger" not in page  # nothing in flight any more


@pytest.mark.integration
def test_upload_runs_through_the_worker_to_a_decision(client_as, celery_worker, policy_version, speech_clip) -> None:  # type: ignore[no-untyped-def]
    moderator = client_as("moderator")
    upload = SimpleUploadedFile("deal.mp4", speech_clip.read_bytes(), content_type="video/mp4")

    assert moderator.post(UPLOAD, {"title": "Deal", "file": upload}).status_code == 302

    video = _wait_for(lambda: Video.objects.filter(stage=Video.Stage.DONE).first(), timeout=90)
    assert video.status == Video.Status.READY
    assert video.segments.exists() and video.keyframes.exists()
    assert video.decisions.exists()  # process_video queued run_inference on the infer queue


def _wait_for(fetch, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fetch()
        if found is not None:
            return found
        time.sleep(0.25)
    raise AssertionError(f"nothing after {timeout}s: {list(Video.objects.values('status', 'stage', 'error'))}")


def test_the_list_pages_through_the_videos_newest_first(make_user) -> None:  # type: ignore[no-untyped-def]
    user, moderator = _uploader(make_user)
    videos = VideoFactory.create_batch(55, status=Video.Status.PROCESSING, created_by=user)

    first = moderator.get(LIST).content.decode()
    assert first.count('<tr id="video-') == 50 and "page 1 of 2 (55 videos)" in first
    assert f'id="video-{videos[-1].pk}"' in first and f'id="video-{videos[0].pk}"' not in first
    # polling the rows keeps to the page the reviewer is on
    assert f'hx-get="{LIST}?page=1"' in first
    second = moderator.get(LIST + "?page=2", HTTP_HX_REQUEST="true").content.decode()
    assert second.count('<tr id="video-') == 5 and f'id="video-{videos[0].pk}"' in second
    assert moderator.get(LIST + "?page=abc").status_code == 200  # a bad page number shows the first


@pytest.mark.django_db
def test_opening_the_upload_address_goes_to_the_upload_form(client_as):
    """A refused upload is answered at /videos/upload/; opening that address again was a blank 405."""
    client = client_as("moderator")
    refused = client.post(reverse("moderation:video_upload"), {"title": "no file"})
    assert refused.status_code == 400
    again = client.get(reverse("moderation:video_upload"))
    assert again.status_code == 302 and again["Location"] == reverse("moderation:video_list")
    assert client_as("labeler").get(reverse("moderation:video_upload")).status_code == 403


def test_the_video_list_finds_a_video_by_its_external_id_the_workbenchs_or_a_platforms(make_user) -> None:  # type: ignore[no-untyped-def]
    """?external_id= was ignored: the list showed every video, so an operator could not find the one a platform's
    ticket or a manifest line names."""
    from moderation.integrations.models import IntegrationVideo
    from moderation.integrations.services import integration_create

    user, client = _uploader(make_user)  # the operator who ran the manifest and sent the videos
    imported = VideoFactory(external_id="m-1", title="From the manifest", created_by=user)
    submitted = VideoFactory(title="From a platform", created_by=user)
    IntegrationVideo.objects.create(
        integration=integration_create(name="platform-a")[0], video=submitted, external_id="p-1"
    )
    other = VideoFactory(title="Unrelated", created_by=user)

    for value, found in (("m-1", imported), ("p-1", submitted)):
        html = client.get(LIST, {"external_id": value}).content.decode()
        assert f'id="video-{found.pk}"' in html and f'id="video-{other.pk}"' not in html, value
        assert f"external id “{value}”" in html and 'name="external_id"' in html
    nothing = client.get(LIST, {"external_id": "nope"}).content.decode()
    assert "No video has the external id “nope”." in nothing and f'id="video-{other.pk}"' not in nothing
    assert f'id="video-{other.pk}"' in client.get(LIST, {"external_id": " "}).content.decode()  # blank: every video


def test_the_list_says_which_videos_a_moderator_sees(make_user) -> None:  # type: ignore[no-untyped-def]
    """A video not decided yet is open only to its uploader and the admins: a moderator whose colleagues had
    uploaded a dozen clips read "No videos yet. Upload one above" and thought the uploads were lost. The list
    now says what it shows (and an empty one, that none is open to them yet), the same whatever is hidden."""
    from django.test import Client

    colleague, moderator = _uploader(make_user)[0], Client()
    moderator.force_login(make_user("moderator"))
    VideoFactory(title="Clip from a colleague", created_by=colleague)

    html = moderator.get(LIST).content.decode()
    assert "Clip from a colleague" not in html
    assert "No videos open to you yet. Upload one above." in html and "No videos yet" not in html
    assert "A colleague's upload is listed here once it is decided." in html
    admin = Client()
    admin.force_login(make_user("admin"))
    seen = admin.get(LIST).content.decode()
    assert "Clip from a colleague" in seen and 'id="videos-open-to-you"' not in seen


def test_the_external_id_search_box_is_wide_enough_for_its_placeholder(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked: the box read "the workbench's or a pl…": its placeholder was cut at the browser's default width."""
    import re

    page = client_as("moderator").get("/videos/").content.decode()
    box = re.search(r'<input type="search" name="external_id"[^>]*>', page)
    assert box is not None
    size = re.search(r'size="(\d+)"', box.group(0))
    placeholder = re.search(r'placeholder="([^"]*)"', box.group(0))
    assert size is not None and placeholder is not None
    assert int(size.group(1)) > len(placeholder.group(1).replace("&#x27;", "'"))


def test_a_file_that_is_not_a_video_reads_as_stopped_not_as_waiting(make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked at 1440x900 (hwalk15): an uploaded file that was not a video showed "Failed · Probing · 0%", a player
    that spun and then said "reload the page to try again", and "No keyframes yet." / "No model decision yet." /
    "No transcript yet." as if processing were still to come. It says where processing stopped, everywhere."""
    user, moderator = _uploader(make_user)
    video = VideoFactory(
        status=Video.Status.FAILED,
        stage=Video.Stage.PROBE,
        error_kind=Video.ErrorKind.NOT_VIDEO,
        error="This file is not a playable video: ffprobe could not read it (moov atom not found).",
        duration=None,
        has_audio=False,
        created_by=user,
    )
    page = moderator.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    status = page[page.index('id="video-status"') : page.index("</p>", page.index('id="video-status"'))]
    assert "stopped at probing" in status and "0%" not in status
    assert "<video" not in page and 'id="nothing-to-play"' in page
    assert "yet." not in page  # no keyframes, transcript or decision promised
    assert page.count("None: processing stopped at probing") == 3  # keyframes, transcript and the model's outcome

    # A video failed later (its file fine, a stage after probing broke) keeps its player: Retry may help there.
    later = VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.ASR, created_by=user, error="ASR crashed")
    page = moderator.get(reverse("moderation:video_detail", args=[later.pk])).content.decode()
    assert "<video" in page and "stopped at speech to text" in page


def test_the_video_page_shields_its_media_as_the_review_screen_does(make_user) -> None:  # type: ignore[no-untyped-def]
    """Walk 21: a moderator who opened a video's page (from a pair, the list or an outcome) saw its player, keyframes and
    selected keyframes in full colour, while the review screen kept the same pictures blurred until "Reveal media".
    The page is shielded by the session's choice and has the same toggle."""
    user, client = _uploader(make_user)
    video = VideoFactory(created_by=user)
    url = reverse("moderation:video_detail", args=[video.pk])

    page = client.get(url).content.decode()
    assert '<div data-shield class="shielded">' in page
    assert "data-reveal-toggle" in page and ">Reveal media</button>" in page

    client.post(reverse("moderation:review_reveal"), {"reveal": "1", "next": url})
    page = client.get(url).content.decode()
    assert '<div data-shield class="">' in page and ">Shield media</button>" in page
