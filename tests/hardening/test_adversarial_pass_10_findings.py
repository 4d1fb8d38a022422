"""Pass 10: an adversarial pass looking where passes 1–9 did not: the same form sent twice at once (a double click,
two tabs, two admins) on the creates that check a unique name before inserting it, Celery tasks handed the id of a
row that is gone, and the names of the newer settings screens that other roles read. Each test below is a finding
and its fix: it fails on the code before the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from moderation.errors import ModerationError, NotAVideoError
from moderation.integrations.models import Integration
from moderation.integrations.services import integration_create
from moderation.media import extractors
from moderation.tagging.models import TagSet
from moderation.tagging.services import tag_set_default, tag_set_save
from tests.factories import UserFactory
from tests.races import race

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def _new_set(slug: str, *, is_default: bool = False) -> TagSet:
    return tag_set_save(
        slug=slug,
        name=f"Set {slug}",
        show_threshold="0.1",
        preselect_threshold="0.9",
        max_suggestions="5",
        tag_names=[],
        create=True,
        is_default=is_default,
    )


@pytest.mark.django_db(transaction=True)
def test_add_integration_sent_twice_at_once_makes_one_and_tells_the_second_its_name_is_taken() -> None:
    """Add pressed twice (or two admins adding one platform): both requests found the name free, the second's insert
    met the unique name and was a 500 page, which the browser showed instead of the first's page with the new
    token (shown once). Now the second waits for the first and is told the name is taken, on the page's form."""
    admin = UserFactory(role="admin")
    first, second = Client(), Client()
    first.force_login(admin)
    second.force_login(admin)
    url = reverse("moderation:integration_add")

    raced = race(
        lambda: first.post(url, {"name": "Acme shorts", "rate_limit": ""}),
        lambda: second.post(url, {"name": "Acme shorts", "rate_limit": ""}),
    )

    assert raced.second_waited
    assert raced.first.status_code == 302  # to the page that shows the new token once
    assert not isinstance(raced.second, Exception), raced.second
    assert raced.second.status_code < 500
    assert "An integration named “Acme shorts” already exists." in raced.second.content.decode()
    assert list(Integration.objects.values_list("name", flat=True)) == ["Acme shorts"]


@pytest.mark.django_db(transaction=True)
def test_a_tag_set_created_twice_at_once_is_made_once_and_the_second_told_its_short_name_is_taken() -> None:
    raced = race(lambda: _new_set("ads"), lambda: _new_set("ads"))

    assert raced.second_waited
    assert isinstance(raced.first, TagSet)
    assert isinstance(raced.second, ModerationError), raced.second
    assert "A tag set “ads” already exists." in str(raced.second)
    assert TagSet.objects.filter(slug="ads").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_tag_sets_made_the_default_at_once_leave_one_default() -> None:
    """Each save cleared the defaults it could see, and neither could see the other's new set: both stayed the
    default, and neither could then stop being it ("Another tag set must be made the default first")."""
    tag_set_default()

    raced = race(lambda: _new_set("ads", is_default=True), lambda: _new_set("kids", is_default=True))

    assert raced.second_waited
    assert isinstance(raced.first, TagSet) and isinstance(raced.second, TagSet)
    assert list(TagSet.objects.filter(is_default=True).values_list("slug", flat=True)) == ["kids"]


@pytest.mark.django_db
def test_the_dataset_export_task_given_a_dataset_that_is_gone_does_nothing_instead_of_failing() -> None:
    """Every task given the id of a row that is gone returns quietly (probed: all 22 tasks taking an id); the
    Hugging Face export of a dataset raised ``DoesNotExist``, a failed task in the worker's log for each delivery."""
    from training.tasks import export_dataset

    assert export_dataset.run(987_654_321) == ""


@pytest.mark.django_db
def test_tag_set_and_integration_names_are_stored_without_bidi_controls() -> None:
    """A tag set's name is read by every moderator on a tags item (the set picker) and its description on the
    vocabulary screen; an integration's name by the admins and in every refusal its platform is sent. Tag names
    refuse invisible bidi controls, video titles and notes lose them; these kept them, so "ads\u202eefas" displayed
    as "adssafe" reversed into another word."""
    saved = tag_set_save(
        slug="ads",
        name=f"Ads \u202eefas{CONTROLS}",
        description=f"Call \u202e0011 2233\u202c now{CONTROLS}",
        show_threshold="0.1",
        preselect_threshold="0.9",
        max_suggestions="5",
        tag_names=[],
        create=True,
    )
    integration, _token = integration_create(name=f"Acme \u202eshorts{CONTROLS}")

    saved.refresh_from_db()
    integration.refresh_from_db()
    assert (saved.name, saved.description) == ("Ads efas", "Call 0011 2233 now")
    assert integration.name == "Acme shorts"
    with pytest.raises(ModerationError, match="needs a name"):
        integration_create(name=CONTROLS)  # nothing visible left: no name


def _clip(path: Path, *codec: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1", *codec,
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_an_uploaded_playlist_naming_a_file_on_the_server_is_refused_before_that_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ffmpeg picks its demuxer by a file's bytes, whatever its name: a moderator's (or a platform's) upload
    "clip.mp4" holding an HLS playlist whose one line is the path of a video on the server (another uploader's, a
    restricted queue's, another platform's import folder: media storage names are date and hash) was probed as that
    video, and its keyframes and speech extracted and shown as the uploader's own. Now the file is refused, in words,
    before the path it names is opened."""
    elsewhere = _clip(tmp_path / "restricted.ts")
    playlist = tmp_path / "clip.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n{elsewhere}\n#EXT-X-ENDLIST\n")
    concat = tmp_path / "list.mp4"
    concat.write_text(f"ffconcat version 1.0\nfile '{elsewhere.name}'\n")

    with pytest.raises(NotAVideoError) as refused:
        extractors.probe(playlist)
    assert "hls playlist or list of other files" in str(refused.value)
    assert str(tmp_path) not in str(refused.value)
    with pytest.raises(NotAVideoError, match="concat playlist"):
        extractors.probe(concat)
    frames = tmp_path / "frames"
    with pytest.raises(ModerationError):
        extractors.extract_keyframes(playlist, frames, fps=1.0, width=64, duration=1.0)
    assert not list(frames.glob("*.jpg"))


@pytest.mark.django_db
def test_a_moderators_upload_of_such_a_playlist_fails_saying_why_and_takes_nothing_from_the_named_file(
    client_as, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The same through the upload form and the media pipeline: the video is recorded as failed, not a video, with
    the sentence the uploader (or a platform) reads, and no keyframe of the other file is made."""
    from moderation.media.models import Video
    from moderation.media.pipeline import video_process

    elsewhere = _clip(tmp_path / "restricted.mp4")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n{elsewhere}\n#EXT-X-ENDLIST\n".encode()
    sent = client_as("moderator").post(
        reverse("moderation:video_upload"), {"title": "holiday", "file": SimpleUploadedFile("clip.mp4", playlist)}
    )
    assert sent.status_code == 302
    video = Video.objects.get(title="holiday")

    video_process(video_id=video.pk)

    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and video.error_kind == Video.ErrorKind.NOT_VIDEO
    assert video.error.startswith("This file is not a playable video: it is a hls playlist"), video.error
    assert video.error_for_sender and str(tmp_path) not in video.error
    assert not video.keyframes.exists() and video.duration in (None, 0)


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("a.webm", ("-c:v", "libvpx")),
        ("a.wmv", ("-c:v", "wmv2")),
        ("a.ts", ()),
        ("a.mpg", ("-c:v", "mpeg2video")),
        ("a.flv", ("-c:v", "flv")),
        ("a.avi", ()),
        ("a.mkv", ()),
        ("a.3gp", ("-s", "176x144", "-c:v", "h263")),
    ],
)
def test_videos_in_every_container_the_upload_takes_are_still_read(tmp_path, name: str, codec: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """The formats an upload's name may keep (``VIDEO_SUFFIXES``), each read through the demuxers' list."""
    assert extractors.probe(_clip(tmp_path / name, *codec)).duration > 0


@pytest.mark.django_db
def test_a_description_longer_than_a_platforms_is_refused_with_the_limit_and_nothing_stored(client_as) -> None:  # type: ignore[no-untyped-def]
    """``POST /api/videos/`` (a user's session or token, a platform's token) and manifests took a description as
    large as the request body, 10 MB: shown on the video's page, sent in every prompt, and searched for tag names
    in time that grew with the square of its matches (40 KB of "cat " repeated: 45 s of a media worker; the search
    now looks a covering match up by its start, 0.5 s). Refused now, saying the limit; one at the limit is taken."""
    from moderation.media.models import Video

    limit = 5_000  # moderation.media.ingest.DESCRIPTION_MAX_CHARS

    moderator = client_as("moderator")

    def send(description: str, body: bytes):  # type: ignore[no-untyped-def]
        upload = SimpleUploadedFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + body)
        return moderator.post("/api/videos/", {"file": upload, "description": description}, format="multipart")

    refused = send("cat " * (limit // 4) + "!", b"a" * 512)
    assert refused.status_code == 400, refused.content
    assert refused.json()["detail"] == (
        f"The description is {limit + 1:,} characters long; a video's description may hold at most {limit:,}. "
        "Nothing was stored."
    )
    assert not Video.objects.exists()

    taken = send("cat " * (limit // 4 - 1) + "cats", b"b" * 512)
    assert taken.status_code == 201, taken.content
    assert len(Video.objects.get().description) == limit


@pytest.mark.django_db(transaction=True)
def test_two_files_sent_at_once_under_one_external_id_store_one_and_tell_the_other_the_id_is_taken() -> None:
    """``POST /api/videos/`` with an ``external_id`` (a user's script) or two manifest imports naming one id: two
    different files at once each found the id free, and the second's insert was the unique id's IntegrityError, a
    500 (the same bytes twice were already serialised by their hash)."""
    from moderation.media.ingest import video_ingest
    from moderation.media.models import Video

    def ingest(body: bytes):  # type: ignore[no-untyped-def]
        upload = SimpleUploadedFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + body)
        return video_ingest(upload=upload, title="clip", external_id="shop-42")

    raced = race(lambda: ingest(b"a" * 512), lambda: ingest(b"b" * 512))

    assert raced.second_waited
    assert isinstance(raced.first, Video)
    assert isinstance(raced.second, ModerationError), raced.second
    assert str(raced.second) == "External id 'shop-42' already belongs to a different video file."
    assert list(Video.objects.values_list("external_id", flat=True)) == ["shop-42"]
