"""What the seventeenth role walk through the running app (`manage.py up --debug`, the demo videos, 130 imported
KuaiMod records) found that the server draws (the browser half is in tests/browser/test_walk17_browser.py)."""

from __future__ import annotations

import re

from django.urls import reverse

from moderation.media.models import Video
from moderation.reproduction.services import pair_claim_next, pair_review_submit
from tests.factories import DecidedVideoFactory, VideoFactory
from tests.moderation.reproduction.test_pair_review import make_pair


def _pair_line(page: str, pair_pk: int) -> str:
    start = page.index(f">Pair #{pair_pk}</a>")
    return re.sub(r"\s+", " ", page[start : page.index("</li>", start)])


def test_a_pair_judged_unrelated_is_not_called_a_copy_on_the_videos_pages(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked as a moderator: pair #1 (“Fast cash tonight” and “Cheap phones, DM me”, score 0.55) was judged
    Unrelated; the earlier video's page then read "Pair #1: copied by the later “Fast cash tonight” (#5) · score 0.55
    · Unrelated", the later one's "a later upload of “Cheap phones, DM me” · Unrelated". Before any verdict it
    already said "copied by", of a pair nobody had looked at."""
    original = DecidedVideoFactory(title="Cheap phones, DM me")
    later = DecidedVideoFactory(title="Fast cash tonight")
    pair = make_pair(0.555, video=later, original=original)
    client = client_as("moderator")

    def lines() -> tuple[str, str]:
        earlier_page = client.get(reverse("moderation:video_detail", args=[original.pk])).content.decode()
        later_page = client.get(reverse("moderation:video_detail", args=[later.pk])).content.decode()
        return _pair_line(earlier_page, pair.pk), _pair_line(later_page, pair.pk)

    earlier_line, later_line = lines()
    assert "may be copied by the later “Fast cash tonight”" in earlier_line and "waiting for a verdict" in earlier_line
    assert "may be a later copy of “Cheap phones, DM me”" in later_line

    moderator = make_user("moderator")
    assert pair_claim_next(user=moderator) == pair
    pair_review_submit(candidate=pair, user=moderator, verdict="unrelated")
    earlier_line, later_line = lines()
    assert (
        "not copied by the later “Fast cash tonight”" in earlier_line and "<strong>Unrelated</strong>" in earlier_line
    )
    assert "not a copy of the earlier “Cheap phones, DM me”" in later_line
    for line in (earlier_line, later_line):
        assert " copied by the later" not in line.replace("not copied by the later", "")
        assert "a later copy of" not in line and "a later upload of" not in line
    # The pairs screen of the video says it the same way (one partial).
    pairs_page = client.get(reverse("moderation:video_repro_pairs", args=[original.pk])).content.decode()
    assert "not copied by the later “Fast cash tonight”" in _pair_line(pairs_page, pair.pk)


def test_an_upload_that_is_not_a_video_is_not_promised_to_a_retry_on_the_queue_list(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin, then the moderator: a text file uploaded as bad.mp4 failed at probing ("Not a video —
    cannot be processed … upload the video itself"); the moderator's queue list said "1 video has failed processing
    and will reach no queue until retried: an admin retries it from the ops page", a retry that cannot succeed and
    that the ops page does not offer for it (it has Dismiss)."""
    VideoFactory(
        title="Bad file",
        status=Video.Status.FAILED,
        stage=Video.Stage.PROBE,
        error="This file is not a playable video: ffprobe could not read it.",
        error_kind=Video.ErrorKind.NOT_VIDEO,
    )
    page = client_as("moderator").get(reverse("moderation:queue")).content.decode()
    said = re.sub(
        r"\s+", " ", page[page.index('id="queue-pipeline"') : page.index("</p>", page.index('id="queue-pipeline"'))]
    )
    assert "failed processing and will reach no queue until retried" not in said
    assert "1 upload is not a playable video (not a video, or damaged) and will reach no queue" in said
    assert "no retry can process it" in said and "an admin retries" not in said

    # A failure a retry may mend is still said as before, beside it.
    VideoFactory(status=Video.Status.FAILED, stage=Video.Stage.ASR, error="worker lost")
    page = client_as("moderator").get(reverse("moderation:queue")).content.decode()
    assert "1 video has failed processing and will reach no queue until retried" in page
    assert 'data-failed="1" data-unprocessable="1"' in page
    admin = client_as("admin").get(reverse("moderation:queue")).content.decode()
    assert (
        f'<a href="{reverse("moderation:ops_dashboard")}#ops-failed">the ops page lists it</a>, each with Dismiss'
        in admin
    )


def test_an_evaluation_of_one_item_says_one_item(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the SFT job's model evaluated on the one gold item read "Succeeded · Gold set … · 1 items"."""
    from django.utils import timezone

    from moderation.inference.services import model_version_register
    from training.models import EvaluationRun

    run = EvaluationRun.objects.create(
        model_version=model_version_register(name="sft-job-1", backend="evidence_baseline"),
        policy_version=policy_version,
        eval_set_key=f"gold:policy_version={policy_version.pk}",
        status=EvaluationRun.Status.SUCCEEDED,
        n_items=1,
        metrics={"binary_accuracy": 0.0},
        finished_at=timezone.now(),
    )
    page = client_as("admin").get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    head = page[page.index("<h1") : page.index("</p>", page.index("<h1"))]
    assert re.search(r"·\s+1 item · finished ", head) and "1 items" not in head, head


def test_paging_one_list_of_the_training_screen_keeps_the_others_page(client_as, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the training screen pages its datasets and its jobs apart (``datasets_page``,
    ``jobs_page``); "next →" under the jobs opened the datasets at page 1 again, and at the screen's top, four
    panels above the jobs."""
    from training import views
    from training.models import PreferenceDataset, TrainingJob

    monkeypatch.setattr(views, "LIST_PAGE", 1)
    datasets = [PreferenceDataset.objects.create(name=f"pairs {n}") for n in range(3)]
    for dataset in datasets:
        TrainingJob.objects.create(dataset=dataset, params={"max_steps": 4}, total_steps=4)
    client = client_as("admin")
    url = reverse("training:job_list")

    page = client.get(url, {"datasets_page": 2}).content.decode()
    jobs_pager = page[page.index('aria-label="Pages of jobs"') :]
    jobs_pager = jobs_pager[: jobs_pager.index("</nav>")]
    assert f'href="{url}?datasets_page=2&amp;jobs_page=2#jobs" rel="next"' in jobs_pager

    page = client.get(url, {"datasets_page": 2, "jobs_page": 3}).content.decode()
    datasets_pager = page[page.index('aria-label="Pages of datasets"') :]
    datasets_pager = datasets_pager[: datasets_pager.index("</nav>")]
    assert f'href="{url}?jobs_page=3&amp;datasets_page=3#datasets" rel="next"' in datasets_pager
    assert f'href="{url}?jobs_page=3&amp;datasets_page=1#datasets" rel="prev"' in datasets_pager
    assert 'id="datasets"' in page and 'id="jobs"' in page


def test_a_webhook_endpoints_events_can_be_changed_after_it_was_added(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: an endpoint is added with every event ticked by default, and its page then showed the
    events as text with nothing to change them (nor any other way in the app): an endpoint sent too much could only
    be disabled."""
    from moderation.integrations.models import WebhookEndpoint
    from moderation.integrations.services import integration_create
    from moderation.integrations.webhooks import webhook_endpoint_create

    integration, _ = integration_create(name="shortvid-platform")
    endpoint, _ = webhook_endpoint_create(
        integration=integration,
        url="https://hooks.example.com/wb",
        event_types=["decision.created", "label.final", "model.promoted", "review.completed", "tags.final"],
    )
    client = client_as("admin")
    url = reverse("moderation:webhook_endpoint", args=[endpoint.pk])
    change = reverse("moderation:webhook_endpoint_events", args=[endpoint.pk])
    page = client.get(url).content.decode()
    assert f'action="{change}"' in page and "Change events…" in page

    saved = client.post(change, {"event_types": ["review.completed", "label.final"]}, follow=True)
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["label.final", "review.completed"] and endpoint.only_own_videos is False
    assert "Events saved: the endpoint is sent these from the next event on." in saved.content.decode()

    refused = client.post(change, {"only_own_videos": "on"})
    assert refused.status_code == 400
    page = refused.content.decode()
    assert 'id="endpoint-events-error">Not saved: Subscribe the endpoint to at least one event type.' in page
    assert '<details id="endpoint-events" open>' in page
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).event_types == ["label.final", "review.completed"]
    assert client_as("moderator").post(change, {"event_types": ["tags.final"]}).status_code == 403


def test_an_imported_record_is_found_by_its_own_id_on_the_video_list(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin after ``import_kuaimod`` of 130 records: "Find by external id" with km0042, the pid of a
    line of the file, said "No video has the external id “km0042”": the import stores it as "kuaimod:km0042"."""
    from moderation.inference.kuaimod import EXTERNAL_ID_PREFIX
    from moderation.media.selectors import SOURCE_ID_PREFIXES

    assert EXTERNAL_ID_PREFIX in SOURCE_ID_PREFIXES
    record = VideoFactory(title="Item 42: dm me for cheap phones", external_id="kuaimod:km0042")
    demo = VideoFactory(title="Cheap phones, DM me", external_id="demo:private-deal")
    VideoFactory(title="another record", external_id="kuaimod:km00421")
    client = client_as("admin")
    url = reverse("moderation:video_list")
    for typed, video in (("km0042", record), ("kuaimod:km0042", record), ("private-deal", demo)):
        page = client.get(url, {"external_id": typed}).content.decode()
        assert reverse("moderation:video_detail", args=[video.pk]) in page, typed
        assert "another record" not in page and "No video has the external id" not in page
