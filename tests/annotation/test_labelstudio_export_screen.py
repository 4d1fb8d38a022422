"""The Label Studio export screen (annotation) and the tag-events dataset download (training):
what a labeler or an admin chooses, what the downloads hold, and bad input said beside the form."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.review.models import ReviewQueue, ReviewTask
from moderation.tagging.models import Tag, TagEvent, TagSet, TagSuggestion
from moderation.tagging.services import tags_import, tags_review_submit
from tests.factories import DecidedVideoFactory, DecisionFactory

pytestmark = pytest.mark.django_db

URL = "/annotation/labelstudio/"


@pytest.fixture
def tagged(make_user):  # type: ignore[no-untyped-def]
    """Three tags, a 'food' set of two; a video reviewed (hotpot kept, travel rejected, food added), a
    video whose one suggestion was rejected, and a video awaiting review."""
    tags_import(lines=["美食", "火锅", "旅游"])
    food, hotpot, travel = (Tag.objects.get(name=n) for n in ("美食", "火锅", "旅游"))
    food_set = TagSet.objects.create(name="Food", slug="food")
    food_set.tags.set([food, hotpot])
    reviewer = make_user("moderator")
    # Decided (so routed): tags are given to routed videos, open to every labeler.
    reviewed, rejected, awaiting = (DecidedVideoFactory(title=t, file="") for t in ("四川火锅", "风景", "家常菜"))
    for video in (reviewed, rejected, awaiting):
        TagSuggestion.objects.create(video=video, tag=hotpot, score=0.8, sources=["text"], features={"f": 1.0})
        TagSuggestion.objects.create(video=video, tag=travel, score=0.3, sources=["text"], features={})
    tags_review_submit(video_id=reviewed.pk, user=reviewer, selected=[hotpot.pk, food.pk], shown=[hotpot.pk, travel.pk])
    tags_review_submit(video_id=rejected.pk, user=reviewer, selected=[], shown=[hotpot.pk, travel.pk])
    return {"reviewed": reviewed, "rejected": rejected, "awaiting": awaiting, "set": food_set}


def _tags(download: str = "", **params: str) -> dict[str, str]:
    form = {"what": "tags", "tags-base_url": "http://wb.test", "tags-which": "reviewed"}
    return form | {f"tags-{k}": v for k, v in params.items()} | ({"download": download} if download else {})


def test_labelers_and_admins_see_the_screen_and_the_links_to_it(client_as):
    labeler = client_as("labeler")
    page = labeler.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Content tags (Taxonomy)" in html and "Review queue items (Choices)" in html
    assert 'value="http://testserver"' in html  # where Label Studio fetches media: this workbench
    # Counted at once; with no days chosen, widening them is no way out: not offered.
    assert "Nothing matches: choose another tag set or other videos." in html and "widen the days" not in html
    assert "The Default queue has no open items." in html
    home = labeler.get("/").content.decode()
    assert home.count(f'href="{URL}"') == 2  # in the navigation and on the labeling panel
    admin = client_as("admin")
    assert URL in admin.get(reverse("moderation:tag_queue")).content.decode()
    assert 'id="tag-events"' in admin.get(reverse("training:job_list")).content.decode()
    for role in ("moderator", "policy_editor"):
        assert client_as(role).get(URL).status_code == 403


def test_reviewed_tags_of_a_tag_set_download_as_label_studio_tasks_and_config(client_as, tagged):
    labeler = client_as("labeler")

    response = labeler.get(URL, _tags(tag_set="food", download="tasks"))

    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    tasks = {t["data"]["video_id"]: t for t in json.loads(response.content)}
    assert set(tasks) == {tagged["reviewed"].pk, tagged["rejected"].pk}  # not the one awaiting review
    kept = tasks[tagged["reviewed"].pk]
    assert kept["data"]["video"] == "" and "testserver" not in response.content.decode()  # no file: no address
    assert kept["predictions"][0]["model_version"] == "reviewed"
    assert sorted(kept["predictions"][0]["result"][0]["value"]["taxonomy"]) == [["火锅"], ["美食"]]
    assert kept["data"]["tags_added"] == ["美食"] and kept["data"]["tags_accepted"] == ["火锅"]
    assert kept["data"]["tags_rejected"] == []  # 旅游 is outside the food set
    # A reviewer who rejected every suggestion kept no tag: the rejected ones are not pre-annotated.
    assert tasks[tagged["rejected"].pk]["predictions"][0]["result"][0]["value"]["taxonomy"] == []

    config = labeler.get(URL, _tags(tag_set="food", download="config")).content.decode()
    assert '<Taxonomy name="tags" toName="text">' in config and "旅游" not in config
    awaiting = json.loads(labeler.get(URL, _tags(which="awaiting", download="tasks")).content)
    assert [t["data"]["video_id"] for t in awaiting] == [tagged["awaiting"].pk]
    assert awaiting[0]["predictions"][0]["model_version"] == "weighted-sum"  # no learned ranker ranked it


def test_the_days_choose_the_reviews_and_the_count_is_previewed_by_htmx(client_as, tagged):
    TagEvent.objects.filter(video=tagged["rejected"]).update(at=timezone.now() - dt.timedelta(days=10))
    # The day the reviews were made (not the clock's day now: a run crossing midnight would filter for the next).
    today = timezone.localtime(TagEvent.objects.filter(video=tagged["reviewed"]).latest("at").at).date().isoformat()
    labeler = client_as("labeler")
    assert "<strong>2</strong> videos match" in labeler.get(URL).content.decode()  # as the screen opens

    preview = labeler.get(URL, _tags(since=today), HTTP_HX_REQUEST="true")

    assert preview.status_code == 200
    assert "<strong>1</strong> video matches" in preview.content.decode()
    assert "<h1>" not in preview.content.decode()  # the partial, not the page
    tasks = json.loads(labeler.get(URL, _tags(since=today, until=today, download="tasks")).content)
    assert [t["data"]["video_id"] for t in tasks] == [tagged["reviewed"].pk]
    assert labeler.get(URL, _tags(until="9999-12-31")).status_code == 200  # the last day there is


@pytest.mark.parametrize(
    ("params", "said"),
    [
        (_tags(since="2026-03-02", until="2026-03-01"), "“From” (2026-03-02) is after “To” (2026-03-01): swap them."),
        (_tags(since="2026-02-30"), "From: Not a date: write it as YYYY-MM-DD"),
        (_tags(tag_set="gone"), "That tag set does not exist (any more)"),
        (_tags(which="everything"), "Choose which videos"),
        (_tags(base_url="javascript:alert(1)"), "Media address: Not a web address"),
        (_tags(base_url="http://wb:99999"), "Media address: Not a web address"),
        (_tags(download="zip"), "Unknown download “zip”"),
        (_tags(download="tasks"), "No videos match"),
        ({"what": "videos"}, "Unknown export “videos”"),
        ({"what": "queue", "queue-queue": "nope", "queue-base_url": "http://wb"}, "That review queue does not exist"),
    ],
)
def test_bad_input_is_said_beside_the_form_not_a_500(client_as, params, said):
    response = client_as("labeler").get(URL, params)

    assert response.status_code == 400
    assert said in response.content.decode()
    assert 'role="alert" tabindex="-1" autofocus>Not exported:' in response.content.decode()  # the page opens on it


def test_a_review_queues_open_items_download_with_the_models_label_as_choices(client_as, policy_version):
    queue = ReviewQueue.objects.create(slug="ls-screen", name="LS screen")
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ReviewTask.objects.create(decision=decision, queue=queue)
    labeler = client_as("labeler")
    # Label Studio reaching the workbench by a service name (no dot, which Django's URL validator refuses).
    params = {"what": "queue", "queue-queue": "ls-screen", "queue-base_url": "http://workbench:8000/"}

    tasks = json.loads(labeler.get(URL, params | {"download": "tasks"}).content)

    assert [t["data"]["decision_id"] for t in tasks] == [decision.pk]
    assert tasks[0]["data"]["video"] == f"http://workbench:8000{decision.video.file.url}"
    assert tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["正向"]}
    assert "<Choices" in labeler.get(URL, params | {"download": "config"}).content.decode()
    empty = ReviewQueue.objects.create(slug="ls-empty", name="Empty")
    refused = labeler.get(URL, params | {"queue-queue": empty.slug, "download": "tasks"})
    assert refused.status_code == 400 and "Queue “ls-empty” has no open items to export." in refused.content.decode()


def test_tag_events_download_as_jsonl_or_a_hugging_face_zip_for_admins(client_as, tagged, capfd):
    admin = client_as("admin")
    url = reverse("training:tag_events_download")

    jsonl = admin.get(url, {"events-tag_set": "food", "events-file_format": "jsonl"})

    assert jsonl.status_code == 200 and jsonl["Content-Type"] == "application/jsonl"
    rows = [json.loads(line) for line in jsonl.content.decode().splitlines()]
    assert sorted((r["tag"], r["action"]) for r in rows) == [("火锅", "accept"), ("火锅", "reject"), ("美食", "add")]
    hf = admin.get(url, {"events-file_format": "hf", "events-eval_share": "0"})
    names = zipfile.ZipFile(io.BytesIO(hf.content)).namelist()
    assert "tag-events/train.jsonl" in names and "tag-events/hf/dataset_dict.json" in names
    assert "Saving the dataset" not in capfd.readouterr().err  # no progress bar in the server's log

    for params, said in (
        ({"events-eval_share": "2"}, "Held-out share: Ensure this value is less than or equal to 0.9."),
        ({"events-eval_share": "abc"}, "Not a number"),
        ({"events-since": "2000-01-01", "events-until": "2000-01-02"}, "No tag review events match"),
    ):
        refused = admin.get(url, {"events-file_format": "jsonl"} | params)
        assert refused.status_code == 400 and said in refused.content.decode(), params
    assert admin.get(url)["Location"] == reverse("training:job_list") + "#tag-events"  # opened by itself
    assert client_as("labeler").get(url).status_code == 403


def test_tag_events_download_before_any_tag_review_says_where_the_events_come_from(client_as):  # type: ignore[no-untyped-def]
    """Seen in Chromium on the demo data: "Download the tag events" with every tag and no days said
    "widen the days or choose another tag set", neither of which can help before anyone reviewed a tag."""
    admin = client_as("admin")
    url = reverse("training:tag_events_download")

    refused = admin.get(url, {"events-file_format": "jsonl", "events-eval_share": "0"})

    page = refused.content.decode()
    assert refused.status_code == 400
    assert "No tag has been reviewed yet" in page and "Content tags queue" in page
    assert "widen the days" not in page


def test_an_empty_queue_export_says_the_queue_is_empty_unless_days_narrow_it(client_as):  # type: ignore[no-untyped-def]
    """Seen in Chromium: an empty queue with no days chosen read "Nothing matches: widen the days."."""
    from moderation.review.services import review_queue_adjudication_default

    queue = review_queue_adjudication_default()
    labeler = client_as("labeler")
    form = {"what": "queue", "queue-queue": queue.slug, "queue-base_url": "http://wb.test"}

    undated = labeler.get(URL, form, HTTP_HX_REQUEST="true").content.decode()
    dated = labeler.get(URL, form | {"queue-since": "2026-01-01"}, HTTP_HX_REQUEST="true").content.decode()

    assert f"The {queue.name} queue has no open items." in undated and "widen" not in undated
    assert "Nothing matches: widen the days." in dated


def test_a_refused_download_opens_the_page_on_why_not_the_live_preview(client_as):  # type: ignore[no-untyped-def]
    """A download refused for the second form reloaded the page at its top, its "Not exported" out of view and the
    focus on the page: the labeler saw the page as before. The page now opens on the refusal; the live preview
    (htmx, while typing) never takes the focus from the field."""
    import re

    client = client_as("labeler")
    params = {
        "what": "queue",
        "queue-queue": ReviewQueue.DEFAULT_SLUG,
        "queue-since": "2026-12-05",
        "queue-until": "2026-12-01",
        "queue-base_url": "http://127.0.0.1:8000",
        "download": "tasks",
    }
    page = client.get(URL, params)
    assert page.status_code == 400
    focused = re.findall(
        r'<p class="error" role="alert" tabindex="-1" autofocus>Not exported: ([^<]*)', page.content.decode()
    )
    assert len(focused) == 1 and "is after" in focused[0]
    live = client.get(URL, {k: v for k, v in params.items() if k != "download"}, HTTP_HX_REQUEST="true")
    assert "Not exported:" in live.content.decode() and "autofocus" not in live.content.decode()
