"""Findings of the fifth adversarial pass (issue hadv15: an external reviewer's eyes before a platform deploys),
each pinned by a test that fails without its fix."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(role: str | None) -> Client:
    client = Client()
    if role is not None:
        client.force_login(UserFactory(role=role))
    return client


def test_a_file_sent_to_a_route_that_takes_none_is_refused_before_it_is_read(settings, tmp_path):
    """Every route took a body as large as a video upload (500 MB and its form) before any sign-in or role check: the
    NUL check reads the form of every view, so anyone, signed out too, made ``/review/claim/`` or a labeler's claim
    button spool a 500 MB file to the server's disk per request, for it to be thrown away. Only the routes that take a
    file now take more than the form limit; the others refuse it unread: 413 with the sentence for scripts, the
    400 page that says the form was too large for a browser."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.MEDIA_ROOT = tmp_path
    big = SimpleUploadedFile("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * (256 * 1024))

    anonymous = Client().post("/review/claim/", {"file": big})
    assert anonymous.status_code == 413, (anonymous.status_code, anonymous.get("Location"))
    assert "The request's fields are larger than" in anonymous.content.decode()

    big.seek(0)
    page = _client("labeler").post("/annotation/tag2cot/1/claim/", {"file": big}, HTTP_ACCEPT="text/html")
    assert page.status_code == 400 and "more than 0.0625 MB of text" in page.content.decode()

    big.seek(0)
    api = _client("moderator").post("/api/labels/", {"file": big})
    assert api.status_code == 413 and "larger than" in api.json()["detail"]

    # The routes that take a file still take one larger than the form limit, from a signed-in user or a token...
    big.seek(0)
    upload = _client("moderator").post("/videos/upload/", {"file": big, "title": "big one"})
    assert upload.status_code == 302, upload.content[:300]
    # ... but not from someone signed out without one: the vocabulary import's and the API's NUL check read the form
    # (spooled the file) before their sign-in checks.
    for url in ("/tags/vocabulary/import/", "/api/videos/"):
        big.seek(0)
        refused = Client().post(url, {"file": big})
        assert refused.status_code == 401 and "nothing of it was read" in refused.content.decode(), url
    big.seek(0)
    page = Client().post("/tags/vocabulary/import/", {"file": big}, HTTP_ACCEPT="text/html")
    assert page.status_code == 302 and page["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("bind", "hosts", "well_known"),
    [
        ("127.0.0.1:8000", ["127.0.0.1", "localhost", "testserver"], True),
        ("0.0.0.0:8000", ["127.0.0.1", "localhost", "testserver"], False),
        ("127.0.0.1:8000", ["review.example.com"], False),  # a proxy in front of the loopback
        ("unix:/run/workbench.sock", ["127.0.0.1"], False),
    ],
)
def test_demo_users_reachable_from_elsewhere_do_not_have_the_readmes_password(
    settings, tmp_path, bind, hosts, well_known
):
    """``manage.py up`` (``./run.sh``) made a superuser ``admin`` and one user per role with the password the README
    prints, whatever the address it served: ``./run.sh --bind 0.0.0.0:8000`` (or a proxy in front of it) opened the
    deployment to anyone who had read the README. Reachable from elsewhere, the demo users get a password made for this
    install (``var/demo_password``, its owner's only), which also replaces the README's on demo users made before."""
    from django.core.management import call_command

    from workbench.management.commands.bootstrap import DEMO_PASSWORD
    from workbench.management.commands.up import demo_password

    settings.VAR_DIR = tmp_path
    settings.ALLOWED_HOSTS = hosts
    call_command("bootstrap", demo_users=True, stdout=open(tmp_path / "first.txt", "w"))  # noqa: SIM115
    chosen = User.objects.get(username="labeler")  # a demo user whose owner chose a password since: left alone
    chosen.set_password("their own choice 42")
    chosen.save()

    password = demo_password(bind=bind)
    call_command("bootstrap", demo_users=True, demo_password=password, stdout=open(tmp_path / "o.txt", "w"))  # noqa: SIM115

    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(DEMO_PASSWORD) is well_known
    assert User.objects.get(username="moderator").check_password(DEMO_PASSWORD) is well_known
    assert User.objects.get(username="labeler").check_password("their own choice 42")
    if not well_known:
        kept = tmp_path / "demo_password"
        assert kept.read_text().strip() == password and len(password) >= 16
        assert kept.stat().st_mode & 0o777 == 0o600
        assert admin.check_password(password) and demo_password(bind=bind) == password  # the same on every start
        assert password in (tmp_path / "o.txt").read_text()  # printed for the operator


@pytest.mark.parametrize("password", ["password", "12345678", "1234567890123", "qwertyuiop"])
def test_a_common_or_all_digit_password_is_refused(password):
    """Only a length of 8 was asked of a password set in the admin's user forms or ``createsuperuser``: "password"
    and "12345678" were taken, and the sign-in throttle's 10 guesses per account and address find them first."""
    with pytest.raises(ValidationError):
        validate_password(password)
    validate_password("plum-harbour-kettle-81")


def test_a_password_like_the_users_own_name_is_refused():
    user = User(username="margarethe", email="margarethe@example.com")
    with pytest.raises(ValidationError):
        validate_password("margarethe1", user=user)


def test_a_range_header_with_thousands_of_digits_is_answered_not_a_500(settings, tmp_path):
    """The media view read a Range header's numbers with ``int()``, which refuses more than 4,300 digits: a player's
    request, or anyone with a media role, sending ``Range: bytes=0-999…`` (5,000 nines, well inside a header's size)
    got a 500. A number past any file's size is read as such: an unsatisfiable start (416), an end at the file's end,
    a suffix of the whole file."""
    from tests.factories import DecidedVideoFactory

    settings.MEDIA_ROOT = tmp_path
    name = f"keyframes/{DecidedVideoFactory(file='').pk}/000001.jpg"
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_bytes(b"0123456789")
    client = _client("moderator")
    nines = "9" * 5000

    start = client.get(f"/media/{name}", HTTP_RANGE=f"bytes={nines}-")
    assert start.status_code == 416 and start["Content-Range"] == "bytes */10"
    for header in (f"bytes=2-{nines}", f"bytes=-{nines}"):
        response = client.get(f"/media/{name}", HTTP_RANGE=header)
        assert response.status_code == 206, (header, response.status_code)
        first = 2 if header.startswith("bytes=2") else 0
        assert b"".join(response.streaming_content) == b"0123456789"[first:]
        assert response["Content-Range"] == f"bytes {first}-9/10"


def test_the_label_studio_queue_export_leaves_out_a_video_another_policy_restricted(policy_version):
    """The queue export offered only the queues open to the labeler, then took every open item of the chosen one. A
    queue open to all can hold an item of a video that another policy's routing sent to a group-restricted queue
    (one policy's open queue does not open what another restricted): a labeler outside that queue's groups exported
    the video's title, speech, on-screen text, keyframe addresses and the model's reasoning from the default queue,
    though every page of that video is a 404 to them."""
    import json

    from django.contrib.auth.models import Group

    from moderation.media.selectors import video_open_to
    from moderation.policies.models import Policy
    from moderation.review.models import ReviewQueue
    from tests.factories import PolicyVersionFactory, ReviewTaskFactory, VideoFactory

    experts = Group.objects.create(name="minors-experts")
    minors = PolicyVersionFactory(policy=Policy.objects.create(slug="minors", name="Minors"))
    restricted = ReviewQueue.objects.create(slug="minors", name="Minors", policy=minors.policy)
    restricted.allowed_groups.add(experts)
    hidden = VideoFactory(title="Secret minors clip")
    ReviewTaskFactory(decision__video=hidden, decision__policy_version=minors, queue=restricted)
    ReviewTaskFactory(decision__video=hidden, decision__policy_version=policy_version)  # the default queue: open
    plain = ReviewTaskFactory(decision__policy_version=policy_version).decision.video
    outsider = UserFactory(role="labeler")
    expert = UserFactory(role="labeler")
    expert.groups.add(experts)

    form = {"what": "queue", "queue-queue": "default", "queue-base_url": "http://wb.test"}
    for user, sees in ((outsider, False), (expert, True)):
        assert video_open_to(user=user, video_id=hidden.pk) is sees
        client = Client()
        client.force_login(user)
        response = client.get("/annotation/labelstudio/", {**form, "download": "tasks"})
        assert response.status_code == 200, response.content[:300]
        ids = {task["data"]["video_id"] for task in json.loads(response.content)}
        assert ids == {plain.pk} | ({hidden.pk} if sees else set()), user
        assert ("Secret minors clip" in response.content.decode()) is sees
        preview = client.get("/annotation/labelstudio/", form, HTTP_HX_REQUEST="true").content.decode()
        assert f"<strong>{2 if sees else 1}</strong>" in preview, preview


def test_a_label_studio_annotation_about_a_video_hidden_from_its_user_records_nothing(policy_version):
    """A Label Studio task names its decision by id, and a project's tasks are anyone's to edit in Label Studio. The
    import recorded the annotation as a review wherever ``by`` could work a queue, and as their correction: a
    reviewer outside a restricted queue's groups reviewed (through another policy's open item) and corrected the
    reasoning about a video every screen of the workbench keeps from them."""
    from types import SimpleNamespace

    from django.contrib.auth.models import Group

    from annotation.labelstudio import _import_one
    from annotation.models import CotCorrection, LabelStudioImport
    from moderation.policies.models import Policy
    from moderation.review.models import Review, ReviewQueue
    from tests.factories import PolicyVersionFactory, ReviewTaskFactory, VideoFactory

    experts = Group.objects.create(name="minors-experts")
    minors = PolicyVersionFactory(policy=Policy.objects.create(slug="minors", name="Minors"))
    restricted = ReviewQueue.objects.create(slug="minors", name="Minors", policy=minors.policy)
    restricted.allowed_groups.add(experts)
    hidden = VideoFactory(title="Secret minors clip")
    ReviewTaskFactory(decision__video=hidden, decision__policy_version=minors, queue=restricted)
    open_item = ReviewTaskFactory(decision__video=hidden, decision__policy_version=policy_version)
    outsider = UserFactory(role="moderator")
    outsider.groups.add(Group.objects.get(name="labeler"))
    decision = open_item.decision
    annotation = {
        "id": 501,
        "result": [
            {"from_name": "label", "type": "choices", "value": {"choices": [decision.label]}},
            {"from_name": "cot", "type": "textarea", "value": {"text": ["[analysis]\nrewritten by an outsider"]}},
        ],
    }
    task = SimpleNamespace(id=77, data={"decision_id": decision.pk})

    outcome = _import_one("http://ls.test", 3, task, annotation, outsider)

    assert outcome["result"] == f"refused: video {hidden.pk} is not open to {outsider.username}", outcome
    assert not Review.objects.exists() and not CotCorrection.objects.exists()
    assert LabelStudioImport.objects.get().result.startswith("refused")  # said once; a second import skips it


def test_the_agreement_figures_read_a_bounded_window_of_the_latest_reviews(policy_version, monkeypatch):
    """The agreement dashboard and every queue's page, which any reviewer opens (and reloads), read every independent
    review the queues ever had into Python and paired up their reviewers: with a year of reviews each page view took
    seconds and hundreds of MB of a web worker. The figures are now read from the latest reviews only, and the page
    says so when older ones were left out."""
    from django.urls import reverse

    from moderation.review import selectors
    from tests.factories import ReviewFactory, ReviewTaskFactory

    monkeypatch.setattr(selectors, "AGREEMENT_MAX_REVIEWS", 4)
    alice, bob = UserFactory(role="moderator"), UserFactory(role="moderator")
    for _ in range(3):  # three items, each reviewed by both: six reviews
        first = ReviewTaskFactory(decision__policy_version=policy_version, slot=0)
        second = ReviewTaskFactory(decision=first.decision, slot=1)
        ReviewFactory(task=first, reviewer=alice, label="正向")
        ReviewFactory(task=second, reviewer=bob, label="正向")

    result = selectors.review_agreement(queues=[first.queue])

    assert (result["window"], result["capped"]) == (4, True)
    assert result["queues"][0]["items"] == 2  # the oldest item's two reviews are past the window
    client = _client("moderator")
    for url in (reverse("moderation:review_agreement"), reverse("moderation:queue_detail", args=[first.queue.slug])):
        assert "Over the latest 4 reviews; older ones are left out." in client.get(url).content.decode(), url


def test_compose_publishes_no_service_with_a_password_everyone_knows_or_without_one():
    """compose.yaml published MinIO's S3 port (9000, on every address: the browsers' presigned playback needs it) with
    the root password ``workbench-secret`` whenever MINIO_ROOT_PASSWORD was left unset: anyone who reached the host
    read and wrote the bucket (every video, keyframe, dataset and adapter) with the README's credentials. And the
    optional vLLM server, which takes no API key, was published on 8001 to every address: anyone could run the GPU.
    The password is now required as SECRET_KEY is, and vLLM is published on the loopback only."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / "compose.yaml").read_text()
    assert "workbench-secret" not in text
    uses = re.findall(r"\$\{MINIO_ROOT_PASSWORD(:[?-])", text)
    assert uses and set(uses) == {":?"}, uses  # required wherever it is read, never a default
    published = {
        name: [str(p) for p in service.get("ports", [])] for name, service in yaml.safe_load(text)["services"].items()
    }
    open_to_all = {name: ports for name, ports in published.items() if any(p.count(":") < 2 for p in ports)}
    # Only what browsers must reach: the web server and MinIO's S3 API (presigned playback).
    assert open_to_all == {"web": ["8000:8000"], "minio": ["9000:9000"]}, open_to_all
