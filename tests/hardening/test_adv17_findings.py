"""Adversarial pass 17 on the session's rates, token scopes, CSP, import folders and worker limits: each test here
failed before its fix."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from moderation.integrations.services import integration_create

pytestmark = pytest.mark.django_db


def _big() -> SimpleUploadedFile:
    return SimpleUploadedFile("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * (256 * 1024))


def test_a_large_upload_from_an_integration_over_its_rate_is_refused_before_its_file_is_read(settings, tmp_path):
    """A user's large upload over their upload rate was refused before the body was read (pass 16), a platform's was
    not: an integration past its request rate (or whoever holds a leaked integration token) still made the server
    read and spool every 500 MB upload to disk, each answered 429 only once the NUL check had read it. A NUL in a
    field: had the body been read, the NUL check would have answered 400 about it."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # a large upload: past the form limit
    settings.MEDIA_ROOT = tmp_path
    integration, token = integration_create(name="spooler", rate_limit="1/hour")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    assert platform.get("/api/videos/").status_code == 200  # the hour's one request
    refused = platform.post("/api/videos/", {"file": _big(), "note": "a\x00b"}, format="multipart")
    assert refused.status_code == 429, (refused.status_code, refused.content[:300])
    assert refused["Content-Type"].startswith("application/json") and int(refused["Retry-After"]) > 3000
    assert "request rate is 1/hour" in refused.json()["detail"] and "not uploaded" in refused.json()["detail"]
    # Another integration's rate is its own: its upload reaches the NUL check (a 400).
    _other, other_token = integration_create(name="other-platform", rate_limit="1/hour")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Integration {other_token}")
    assert other.post("/api/videos/", {"file": _big(), "note": "a\x00b"}, format="multipart").status_code == 400


@pytest.mark.parametrize(
    "title",
    [
        "Add me on We\u200bChat for the price",  # zero-width space inside the word
        "Add me on We\u00adChat for the price",  # soft hyphen (invisible unless the line breaks there)
        "Add me on We\u2060Ch\ufeffat for the price",  # word joiner, zero-width no-break space
        "Add me on Ｗｅ\u200cＣｈａｔ for the price",  # fullwidth letters and a zero-width non-joiner
        "喜欢的加\u200d微\u200b信私聊",  # a Chinese title split by zero-width characters
    ],
)
def test_keywords_match_titles_that_hide_invisible_format_characters_inside_a_word(title):
    """Pass 16 made keyword matching read past bidi controls; every other invisible format character still split a
    word: an uploader titling a video "We\\u200bChat" (shown as "WeChat") or in fullwidth letters was called harmless by
    the evidence baseline (the offline stage-one model) while every reviewer read the risk keyword in the title."""
    from moderation.inference.backends import ContentBundle
    from moderation.inference.backends.evidence import EvidenceBaseline

    keywords = ["wechat", "加微信"]
    taxonomy = [{"key": "private", "tags": [{"key": "引导私下交易", "name": "Private deals", "keywords": keywords}]}]
    content = ContentBundle(title=title, description="", uploader="", segments=[], frames=[], ocr=[])

    result = EvidenceBaseline().decide(content, taxonomy, "正向")

    assert (result.is_violation, result.label) == (True, "引导私下交易")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rotate", [False, True])
def test_two_token_requests_at_once_give_one_token_not_a_server_error(make_user, rotate):
    """The API token page's Create pressed twice, or two scripts' ``POST /api/token/`` at the same moment: both read
    "no token" (or both locked the old one, which the first then deleted) and both inserted a token for the user: the
    second broke the one-token-per-user constraint, a 500 (IntegrityError). Now the second waits for the first and
    finds its token (a create: kept, no key again; a rotation: rotated once more, the first key refused)."""
    from django.db import IntegrityError

    from tests.races import race
    from workbench.models import ApiToken
    from workbench.tokens import api_token_issue

    user = make_user("moderator")
    if rotate:
        api_token_issue(user=user)
    raced = race(
        lambda: api_token_issue(user=user, rotate=rotate),
        lambda: api_token_issue(user=user, rotate=rotate),
    )
    assert not isinstance(raced.first, BaseException), raced.first
    assert not isinstance(raced.second, IntegrityError | BaseException), repr(raced.second)
    assert ApiToken.objects.filter(user=user).count() == 1
    token = ApiToken.objects.get(user=user)
    if rotate:  # the later rotation's key is the one that works
        assert raced.second.key and token.key_hash != raced.first.token.key_hash
    else:  # one key, handed out once
        assert raced.first.key and raced.second.key == "" and raced.second.token.pk == token.pk


def test_a_tiny_file_declaring_hours_makes_a_bounded_number_of_keyframes(make_user, settings, tmp_path):
    """Candidate keyframes were taken at KEYFRAME_FPS for the whole declared length: a 0.5 MB upload of ten hours of
    a still picture made 36,000 JPEGs (142 MB of disk), 36,000 rows and as many frames for every later stage to
    score, about 300 times its own size, from an uploader within their upload rate. Now a long video's candidates
    are spread over its length, at most KEYFRAME_MAX_CANDIDATES of them."""
    import subprocess

    from moderation.media.ingest import video_ingest
    from moderation.media.pipeline import video_process
    from moderation.models import Keyframe

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KEYFRAME_MAX_CANDIDATES = 40
    long_still = tmp_path / "still.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=1:d=400", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(long_still)],
        check=True,
    )  # fmt: skip
    video = video_ingest(path=long_still, title="Still for hours", created_by=make_user("moderator"))
    video_process(video_id=video.pk)

    stamps = list(Keyframe.objects.filter(video=video).order_by("index").values_list("timestamp", flat=True))
    assert 20 <= len(stamps) <= 40, len(stamps)
    assert stamps[0] == 0 and stamps[-1] > 350  # spread over the whole length, not its first 40 seconds


@pytest.mark.parametrize(("suffix", "served_as"), [(".ts", "video/mp2t"), (".3gp", "video/3gpp"), (".bin", None)])
def test_an_uploaded_video_is_served_as_a_video_whatever_the_servers_mime_table_says(
    client_as, settings, tmp_path, suffix, served_as
):
    """The media view took the type from the host's MIME table (/etc/mime.types): an uploaded MPEG-TS file (.ts,
    one of the accepted video suffixes) came back as ``text/vnd.trolltech.linguist`` and a .3gp as ``audio/3gpp``:
    an uploader's bytes served as text from the workbench's own origin, and a player that would not take them. The
    served folders hold videos, covers and keyframes only: each known suffix has its type, anything else is
    ``application/octet-stream``."""
    from tests.factories import VideoFactory

    settings.MEDIA_ROOT = tmp_path
    name = f"videos/2026/12/0123456789abcdef-clip{suffix}"
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_bytes(b"<html><script>alert(1)</script></html>")
    VideoFactory(file=name)
    response = client_as("admin").get(f"/media/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == (served_as or "application/octet-stream"), response["Content-Type"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_video_whose_picture_is_past_the_pixel_bound_is_refused_at_the_probe(settings, tmp_path):
    """Nothing bounded a video's picture size: a 200 KB upload of three seconds at 8192x8192 took ffmpeg 543 MB to
    decode into keyframes (about 2 GB at 16384x16384), once per such upload on the media workers at once. Past
    VIDEO_MAX_PIXELS a frame it is refused when probed, with the size and what to do (no retry offered: the file's
    fault); a video of the bound's size passes."""
    import subprocess

    from moderation.errors import NotAVideoError
    from moderation.media import extractors

    clip = tmp_path / "wide.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=640x480:r=1:d=2", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    settings.VIDEO_MAX_PIXELS = 640 * 480
    assert (extractors.probe(clip).width, extractors.probe(clip).height) == (640, 480)
    settings.VIDEO_MAX_PIXELS = 640 * 480 - 1
    with pytest.raises(NotAVideoError, match="640×480"):
        extractors.probe(clip)
