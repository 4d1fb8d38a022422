from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from training.models import PreferenceDataset, TrainingJob
from training.services import preference_dataset_build

pytestmark = pytest.mark.django_db

PAGES = [
    ("get", "training:job_list", False),
    ("post", "training:dataset_build", False),
    ("post", "training:job_start", False),
    ("get", "training:job_detail", True),
    ("post", "training:job_cancel", True),
    ("get", "training:dataset_download", True),
]


@pytest.fixture
def job(training_dirs, override_review):  # type: ignore[no-untyped-def]
    dataset = preference_dataset_build(created_by=None)
    return TrainingJob.objects.create(dataset=dataset, params={"max_steps": 4}, total_steps=4)


@pytest.mark.parametrize("role", ["moderator", "labeler", "policy_editor", None])
def test_only_admins_may_use_training(client_as, job, role):
    client = client_as(role)
    for method, name, with_pk in PAGES:
        url = reverse(name, args=[job.pk if "job" in name else job.dataset_id] if with_pk else [])
        assert getattr(client, method)(url).status_code == 403, name
    assert PreferenceDataset.objects.count() == 1
    assert TrainingJob.objects.get().status == TrainingJob.Status.QUEUED


def test_anonymous_users_are_sent_to_login(client, job):
    for method, name, with_pk in PAGES:
        url = reverse(name, args=[job.pk if "job" in name else job.dataset_id] if with_pk else [])
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name


def test_building_with_nothing_to_learn_from_shows_the_reason(client_as, training_dirs):
    response = client_as("admin").post(reverse("training:dataset_build"), {"kind": "dpo"}, follow=True)

    assert response.redirect_chain  # the training page again (a reload re-sends nothing), the reason beside the form
    assert "No overrides or corrections yet" in response.content.decode()
    assert not PreferenceDataset.objects.exists()


def test_a_held_out_share_out_of_range_is_refused_in_the_forms_words(client_as, training_dirs, override_review):
    """Walk hwalk22: a held-out share of 5 was refused with "The evaluation share must be at least 0 and below 1.",
    a name no field on the screen has (the form says "Held-out share")."""
    response = client_as("admin").post(
        reverse("training:dataset_build"), {"kind": "dpo", "eval_share": "5"}, follow=True
    )
    html = response.content.decode()
    assert "The held-out share must be at least 0 and below 1" in html and "evaluation share" not in html
    assert not PreferenceDataset.objects.exists()


def test_a_forged_dataset_kind_is_refused_and_builds_nothing(client_as, training_dirs, override_review):
    client = client_as("admin")
    for forged, said in (
        ({"kind": "grpo"}, "Unknown dataset kind “grpo”"),
        ({}, "No dataset kind was chosen"),
        ({"kind": "dpo", "rejected_from": "everything"}, "Unknown source of DPO pairs “everything”"),
    ):
        response = client.post(reverse("training:dataset_build"), forged, follow=True)
        assert response.redirect_chain == [(reverse("training:job_list") + "#dataset-error", 302)], forged
        assert f"Not built: {said}" in response.content.decode()
    assert not PreferenceDataset.objects.exists()  # there was data to build from: only the refusal stopped it


def test_admin_builds_a_dataset_starts_a_job_and_downloads_the_pairs(
    client_as, training_dirs, override_review, django_capture_on_commit_callbacks
):
    client = client_as("admin")
    response = client.post(reverse("training:dataset_build"), {"kind": "dpo"}, follow=True)
    dataset = PreferenceDataset.objects.get()
    assert ": 1 preference pair, all to train on, none held out." in response.content.decode()
    assert "Start the training job" in response.content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("training:job_start"), {"dataset": dataset.pk, "base_model": "", "max_steps": 2})
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training:job_detail", args=[job.pk])
    assert len(callbacks) == 1  # the job is enqueued only once the transaction commits
    assert job.params["max_steps"] == 2 and job.total_steps == 2 and job.status == TrainingJob.Status.QUEUED

    download = client.get(reverse("training:dataset_download", args=[dataset.pk]))
    assert download.status_code == 200
    rows = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert rows[0]["decision_id"] == override_review.decision_id
    assert {"prompt", "chosen", "rejected"} <= set(rows[0])


def test_admin_builds_pairs_from_the_serving_models_mistakes_only(client_as, training_dirs, override_review):
    from moderation.inference.services import model_version_promote
    from tests.factories import ModelVersionFactory

    client = client_as("admin")
    response = client.post(reverse("training:dataset_build"), {"kind": "dpo", "rejected_from": "serving"}, follow=True)
    assert response.redirect_chain and "No model version is serving yet" in response.content.decode()
    assert '<option value="serving" selected>' in response.content.decode()  # the choice is kept
    serving = ModelVersionFactory(name="sft-job-7")
    model_version_promote(model_version=serving)
    page = client.get(reverse("training:job_list")).content.decode()
    assert "mistakes of the serving model (sft-job-7)" in page
    # The override fixture's decision was made by another model: not the serving one's mistake.
    response = client.post(reverse("training:dataset_build"), {"kind": "dpo", "rejected_from": "serving"}, follow=True)
    assert response.redirect_chain and "No overrides or corrections of sft-job-7" in response.content.decode()
    assert not PreferenceDataset.objects.exists()
    client.post(reverse("training:dataset_build"), {"kind": "dpo", "rejected_from": ""})
    assert PreferenceDataset.objects.get().pair_count == 1


def test_invalid_start_form_is_a_400_with_the_reason(client_as, job):
    response = client_as("admin").post(reverse("training:job_start"), {"dataset": job.dataset_id, "max_steps": 0})
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    assert TrainingJob.objects.count() == 1


def test_a_refused_job_start_is_said_where_the_page_opens_and_its_pagers_go_to_the_list(client_as, job):
    """Seen in Chromium: a refused start drew the screen again at its top, the reason beside the field
    below the dataset and tag-event panels, off screen; drawn at /training/jobs/start/, its paging links
    led to that POST-only address."""
    TrainingJob.objects.bulk_create(
        [TrainingJob(dataset=job.dataset, params={"max_steps": 4}, total_steps=4) for _ in range(29)]
    )
    response = client_as("admin").post(
        reverse("training:job_start"), {"dataset": job.dataset_id, "base_model": "/nowhere/model", "max_steps": 2}
    )

    assert response.status_code == 400
    html = response.content.decode()
    summary = re.search(r'<p class="error" role="alert" id="start-error" tabindex="-1" autofocus>(.*?)</p>', html, re.S)
    assert summary is not None and "Not started: Base model: /nowhere/model" in summary.group(1)
    assert 'href="/training/jobs/?jobs_page=2#jobs"' in html


def test_detail_polls_while_active_and_draws_the_loss(client_as, job):
    client = client_as("admin")
    job.status = TrainingJob.Status.RUNNING
    job.step = 2
    job.history = [{"step": 1, "loss": 0.69}, {"step": 2, "loss": 0.5}]
    job.log_tail = "<script>alert(1)</script>"
    job.save()

    page = client.get(reverse("training:job_detail", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in page
    assert "<polyline" in page and 'points="8.0,8.0 472.0,152.0"' in page  # high loss top-left, falling
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page

    partial = client.get(reverse("training:job_detail", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="job-progress"')
    assert "<h1>" not in partial

    job.status = TrainingJob.Status.SUCCEEDED
    job.save()
    done = client.get(reverse("training:job_detail", args=[job.pk])).content.decode()
    assert "every 1s" not in done and "Cancel job" not in done


def test_cancel_button_cancels_a_queued_job(client_as, job):
    response = client_as("admin").post(reverse("training:job_cancel", args=[job.pk]), follow=True)

    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED and job.cancel_requested
    assert "Cancel requested" in response.content.decode()

    again = client_as("admin").post(reverse("training:job_cancel", args=[job.pk]), follow=True)
    assert again.status_code == 200 and "already finished" in again.content.decode()


@pytest.mark.django_db
def test_job_list_has_a_plain_title_and_one_retrain_rules_panel(client_as):  # type: ignore[no-untyped-def]
    page = client_as("admin").get(reverse("training:job_list")).content.decode()
    assert "<title>Training · Review workbench</title>" in page
    assert page.count("<h2>Retrain rules</h2>") == 1
    # With no dataset the job panel names both kinds (it said "a preference dataset", but an SFT job
    # needs SFT records), and the count column is not only pairs.
    assert "DPO preference pairs, or SFT chat records for an SFT job" in page and "<th>To train on</th>" in page


def _cache_hub_model(cache: Path, repo_id: str, monkeypatch) -> None:
    """``repo_id`` laid out in a Hugging Face cache at ``cache`` (refs/main → snapshot with config.json)."""
    import huggingface_hub.constants

    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))


def test_a_model_that_cannot_be_loaded_offline_is_refused_when_the_job_is_created(
    client_as, job, settings, tmp_path, monkeypatch
):
    """No download ever happens here: a hub id not in the local cache, or a folder that isn't there, is a
    form message at once (it used to be queued and fail ~50 s later in the worker)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    settings.MODELS_DIR = tmp_path / "models"
    settings.MODELS_DIR.mkdir()
    client = client_as("admin")
    for field, value, message in (
        ("base_model", "Qwen/Qwen2.5-0.5B-Instruct", "not in this server&#x27;s model cache"),
        ("guide_base_model", "Qwen/Qwen2.5-0.5B-Instruct", "not in this server&#x27;s model cache"),
        ("base_model", str(settings.MODELS_DIR / "missing"), "No model folder at"),
    ):
        response = client.post(reverse("training:job_start"), {"dataset": job.dataset_id, "max_steps": 2, field: value})
        assert response.status_code == 400, (field, value)
        assert message in response.content.decode(), (field, value)
    assert TrainingJob.objects.count() == 1
    _cache_hub_model(tmp_path / "hub", "Qwen/Qwen2.5-0.5B-Instruct", monkeypatch)
    response = client.post(
        reverse("training:job_start"),
        {"dataset": job.dataset_id, "max_steps": 2, "base_model": "Qwen/Qwen2.5-0.5B-Instruct"},
    )
    assert response.status_code == 302
    assert TrainingJob.objects.latest("pk").base_model == "Qwen/Qwen2.5-0.5B-Instruct"


def test_model_folders_typed_into_the_job_form_are_confined(client_as, job, settings, tmp_path, monkeypatch):
    """A base or guide model is a hub id or a folder inside the model folders; no path elsewhere is opened."""
    settings.MODELS_DIR = tmp_path / "models"
    (settings.MODELS_DIR / "mine").mkdir(parents=True)
    (settings.MODELS_DIR / "escape").symlink_to("/etc")
    client = client_as("admin")
    refused = {
        "base_model": [
            "/etc",
            "../../../../etc",
            str(settings.MODELS_DIR / ".." / ".."),
            str(settings.MODELS_DIR / "escape"),
            "not a hub id!",
        ],
        "guide_base_model": ["/etc/ssl"],
    }
    for field, values in refused.items():
        for value in values:
            response = client.post(
                reverse("training:job_start"), {"dataset": job.dataset_id, "max_steps": 2, field: value}
            )
            assert response.status_code == 400, (field, value)
            assert (
                "outside the model folders" in response.content.decode()
                or "neither a hub id" in response.content.decode()
            )
    assert TrainingJob.objects.count() == 1
    _cache_hub_model(tmp_path / "hub", "Qwen/Qwen2.5-VL-7B-Instruct", monkeypatch)
    for value in (str(settings.MODELS_DIR / "mine"), "Qwen/Qwen2.5-VL-7B-Instruct"):
        response = client.post(
            reverse("training:job_start"), {"dataset": job.dataset_id, "max_steps": 2, "base_model": value}
        )
        assert response.status_code == 302, (value, response.content.decode()[:500])
    assert TrainingJob.objects.count() == 3


def test_the_training_screen_pages_datasets_and_jobs_each_on_its_own(client_as, job):
    dataset = job.dataset
    TrainingJob.objects.bulk_create(
        [TrainingJob(dataset=dataset, params={"max_steps": 4}, total_steps=4) for _ in range(29)]
    )  # 30 jobs, 1 dataset
    client = client_as("admin")
    first = client.get(reverse("training:job_list")).content.decode()
    assert "page 1 of 2 (30 jobs)" in first and '?jobs_page=2#jobs"' in first
    assert "datasets_page=" not in first  # one dataset: no paging links for it
    oldest = job
    second = client.get(reverse("training:job_list"), {"jobs_page": 2}).content.decode()
    assert "page 2 of 2 (30 jobs)" in second and f'href="/training/jobs/{oldest.pk}/"' in second
    assert f'href="/training/jobs/{oldest.pk}/"' not in first and dataset.name in second


def test_a_grpo_job_whose_every_reward_was_0_says_it_learned_nothing_and_is_not_promotable(client_as, job):
    from moderation.models import ModelVersion
    from training.release import promotion_check
    from training.services import training_job_succeed

    job.kind, job.status = TrainingJob.Kind.GRPO, TrainingJob.Status.RUNNING
    job.history = [{"step": 1, "loss": 0.0, "reward": 0.0}, {"step": 2, "loss": 0.0, "reward": 0.0}]
    job.save()
    learned = TrainingJob.objects.create(
        dataset=job.dataset,
        kind="grpo",
        status="running",
        history=[{"step": 1, "reward": 0.0}, {"step": 2, "reward": 0.5}],
    )
    training_job_succeed(job_id=job.pk, adapter_path="adapters/grpo-zero", metrics={"final_reward": 0.0})
    training_job_succeed(job_id=learned.pk, adapter_path="adapters/grpo-learned", metrics={"final_reward": 0.5})
    job.refresh_from_db()
    learned.refresh_from_db()
    assert job.status == "succeeded" and job.model_version is not None and learned.model_version is not None
    # Recorded as data on the job's registered version, not only as text.
    assert job.model_version.metrics["no_learning_signal"] is True
    assert "no_learning_signal" not in learned.model_version.metrics  # one non-zero reward is a signal

    client = client_as("admin")
    page = client.get(reverse("training:job_detail", args=[job.pk])).content.decode()
    assert "Every reward was 0: the policy got no learning signal" in page and "Nothing was learned" in page
    assert "Nothing was learned" not in client.get(reverse("training:job_detail", args=[learned.pk])).content.decode()
    listing = client.get(reverse("training:model_list")).content.decode()
    # Said once, in the release column beside the refused Promote (the version cell repeated it word for word);
    # the version cell flags it as the job list does.
    row = listing.split(f'data-version="{job.model_version.name}"')[1].split("</tr>")[0]
    assert listing.count("Every reward was 0: the policy got no learning signal") == 1
    assert "Every reward was 0" in row.split('class="gate-reasons"')[1]
    assert "Nothing was learned." in row.split('class="gate-reasons"')[0]
    # A serving version has no gate to say it: the version cell does, once.
    ModelVersion.objects.filter(pk=job.model_version.pk).update(is_serving=True)
    serving = client.get(reverse("training:model_list")).content.decode()
    assert serving.count("Every reward was 0: the policy got no learning signal") == 1
    row = serving.split(f'data-version="{job.model_version.name}"')[1].split("</tr>")[0]
    assert "Nothing was learned. Every reward was 0" in " ".join(re.sub(r"<[^>]+>", " ", row).split())
    ModelVersion.objects.filter(pk=job.model_version.pk).update(is_serving=False)
    jobs = client.get(reverse("training:job_list")).content.decode()
    # The job list said a plain "Succeeded" for it.
    assert jobs.count("Nothing was learned.") == 1
    assert f'href="/training/jobs/{job.pk}/"' in jobs.split("Nothing was learned.")[0].rsplit("<tr>", 1)[1]
    check = promotion_check(candidate=job.model_version)
    assert not check.allowed and "learned nothing" in check.reasons[0]


def test_a_grpo_job_whose_groups_all_scored_equal_non_zero_rewards_learned_nothing(client_as, job):
    """Equal rewards within every group give every completion advantage 0, whatever the reward's value."""
    from training.release import promotion_check
    from training.services import training_job_succeed

    job.kind, job.status = TrainingJob.Kind.GRPO, TrainingJob.Status.RUNNING
    job.history = [
        {"step": 1, "loss": 0.0, "reward": 0.5, "reward_std": 0.25, "frac_reward_zero_std": 1.0},
        {"step": 2, "loss": 0.0, "reward": 1.0, "reward_std": 0.0, "frac_reward_zero_std": 1.0},
    ]
    job.save()
    flat_batch = TrainingJob.objects.create(  # a history from before the share was recorded: the batch's spread
        dataset=job.dataset, kind="grpo", status="running", history=[{"step": 1, "reward": 0.5, "reward_std": 0.0}]
    )
    learned = TrainingJob.objects.create(  # one group of one step told completions apart: a signal
        dataset=job.dataset,
        kind="grpo",
        status="running",
        history=[
            {"step": 1, "reward": 0.5, "reward_std": 0.0, "frac_reward_zero_std": 1.0},
            {"step": 2, "reward": 0.75, "reward_std": 0.2, "frac_reward_zero_std": 0.5},
        ],
    )
    for row in (job, flat_batch, learned):
        training_job_succeed(job_id=row.pk, adapter_path=f"adapters/grpo-{row.pk}", metrics={"final_reward": 0.5})
        row.refresh_from_db()
    assert job.model_version.metrics["no_learning_signal"] is True
    assert flat_batch.model_version.metrics["no_learning_signal"] is True
    assert "no_learning_signal" not in learned.model_version.metrics

    page = client_as("admin").get(reverse("training:job_detail", args=[job.pk])).content.decode()
    assert (
        "Nothing was learned" in page and "got the same reward as the others of that prompt (mean reward 0.75)" in page
    )
    assert "Every reward was 0" not in page
    check = promotion_check(candidate=job.model_version)
    assert not check.allowed and "learned nothing" in check.reasons[0]


def test_starting_and_cancelling_a_training_job_is_in_the_audit_log(client_as, job, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Walked as an admin: promotions and refusals were in the audit log, but not who set a model training
    on which dataset, nor who cancelled it."""
    from moderation.review.models import AuditEvent

    client = client_as("admin")
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("training:job_start"), {"dataset": job.dataset_id, "base_model": "", "max_steps": 3})
    started = TrainingJob.objects.exclude(pk=job.pk).get()
    client.post(reverse("training:job_cancel", args=[started.pk]))

    events = AuditEvent.objects.filter(object_type="trainingjob", object_id=str(started.pk)).order_by("pk")
    assert [(e.action, e.actor_name) for e in events] == [
        ("training.job_start", started.created_by.username),
        ("training.job_cancel", started.created_by.username),
    ]
    assert events[0].payload["dataset"] == job.dataset_id and events[0].payload["max_steps"] == 3


def test_a_built_dataset_says_its_total_and_how_it_was_split(client_as, training_dirs, override_review):  # type: ignore[no-untyped-def]
    """Seen in Chromium: "Built … with 1 SFT record (2 held out)" for three records, one to train on; the
    table's "Pairs / records" column counted only those to train on, beside "Held out"."""
    from tests.factories import DecisionFactory, ReviewFactory, ReviewTaskFactory
    from training.data import split_for, split_group_for

    # Six or more videos a reviewer overrode, until both sides of the split have one: the split hashes each video's
    # id, and which ids a test database hands out depends on the tests run before on it (on one pytest-xdist
    # worker no dataset was built: all six held out is "Every video landed in the held-out split").
    sides = {split_for(split_group_for(override_review.decision.video), 0.5)}
    i = 0
    while i < 5 or len(sides) < 2:
        assert i < 40, sides
        decision = DecisionFactory(policy_version=override_review.decision.policy_version, label="正向")
        ReviewFactory(task=ReviewTaskFactory(decision=decision), decision=decision, note=f"Sells off the app {i}.")
        sides.add(split_for(split_group_for(decision.video), 0.5))
        i += 1
    client = client_as("admin")

    page = client.post(reverse("training:dataset_build"), {"kind": "dpo", "eval_share": "0.5"}, follow=True)

    dataset = PreferenceDataset.objects.get()
    total = dataset.train_count + dataset.eval_count
    assert dataset.eval_count and dataset.train_count  # split both ways
    said = (
        f": {total} preference pairs, {dataset.train_count} to train on, {dataset.eval_count} held out for evaluation."
    )
    assert said in page.content.decode()
    assert "<th>To train on</th>" in page.content.decode()


def test_a_jobs_model_version_links_to_that_version_on_the_model_versions_screen(client_as, job):
    """The job page named the version it produced as plain text: the reader had to find it in the registry."""
    from moderation.models import ModelVersion
    from training.services import training_job_succeed

    job.status = TrainingJob.Status.RUNNING
    job.history = [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}]
    job.save()
    training_job_succeed(job_id=job.pk, adapter_path="adapters/sft-linked", metrics={})
    job.refresh_from_db()
    produced = job.model_version
    other = ModelVersion.objects.create(name="another-version", backend=ModelVersion.Backend.EVIDENCE_BASELINE)
    client = client_as("admin")

    page = client.get(reverse("training:job_detail", args=[job.pk])).content.decode()
    link = re.search(r'<a href="([^"]+)" id="job-model-version"><strong>([^<]+)</strong></a>', page)
    assert link is not None and link.group(2) == produced.name

    listing = client.get(link.group(1).replace("&amp;", "&"))
    html = listing.content.decode()
    assert listing.status_code == 200
    assert f'data-version="{produced.name}"' in html and f'data-version="{other.name}"' not in html
    assert f"Showing model version <strong>{produced.name}</strong> only" in html
    assert f'<option value="{produced.pk}" selected>' in html  # the Evaluate form starts on it
    every = client.get(reverse("training:model_list")).content.decode()
    assert f'data-version="{produced.name}"' in every and f'data-version="{other.name}"' in every

    gone = client.get(reverse("training:model_list"), {"version": "999999"})
    assert gone.status_code == 404
    text = gone.content.decode()
    assert "There is no model version “999999”" in text and f'data-version="{other.name}"' in text


def test_an_empty_build_says_which_corrections_wait_for_their_second_labeler(client_as, training_dirs, policy_version):
    """A labeler's submitted correction is data only once a second labeler accepts it; the empty build said
    "No overrides or corrections yet" as if that work were missing."""
    from annotation.models import CotCorrection
    from tests.factories import CotCorrectionFactory

    CotCorrectionFactory(decision__policy_version=policy_version, status=CotCorrection.Status.SUBMITTED)
    client = client_as("admin")
    for kind in ("dpo", "sft"):
        body = client.post(reverse("training:dataset_build"), {"kind": kind}, follow=True).content.decode()
        assert "1 submitted CoT correction waits for a second labeler to accept it" in body, kind
    assert not PreferenceDataset.objects.exists()


def test_a_started_job_is_confirmed_by_its_live_state_not_a_queued_message_that_outlives_it(
    client_as, job, training_dirs, django_capture_on_commit_callbacks
):
    """Walked: "Job N queued." stayed at the top of the job's page after the job had succeeded; then, reworded as a
    flash ("Job #N queued on the train workers…"), it still stayed there: the flash is drawn once with the page and
    only the progress panel below polls. The start is confirmed by the panel, which says the job is queued (when, by
    whom) only while it is, and follows it; nothing above it says "queued"."""
    client = client_as("admin")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("training:job_start"), {"dataset": job.dataset_id, "base_model": "", "max_steps": 2}, follow=True
        )
    started = TrainingJob.objects.latest("pk")
    page = response.content.decode()
    assert response.redirect_chain == [(reverse("training:job_detail", args=[started.pk]), 302)]
    above, panel = page.split('id="job-progress"')
    assert 'class="messages"' not in page and "queued" not in above.lower().split("<main")[-1]
    state = panel.split('id="job-state">')[1].split("</p>")[0]
    assert 'data-status="queued">Queued</span>' in state
    said = f"Job #{started.pk} queued just now by {started.created_by.username}. Waiting for a training worker"
    assert said in state

    TrainingJob.objects.filter(pk=started.pk).update(status=TrainingJob.Status.RUNNING, step=1)
    polled = client.get(reverse("training:job_detail", args=[started.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="running">Running</span>' in polled and "queued" not in polled.lower()
    TrainingJob.objects.filter(pk=started.pk).update(status=TrainingJob.Status.SUCCEEDED, step=2)
    polled = client.get(reverse("training:job_detail", args=[started.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="succeeded">Succeeded</span>' in polled and "hx-trigger" not in polled
    reloaded = client.get(reverse("training:job_detail", args=[started.pk])).content.decode()
    assert "queued" not in reloaded.lower().split("<main")[-1] and "Waiting for a training worker" not in reloaded
    assert "Succeeded" in reloaded and 'class="messages"' not in reloaded


def test_a_joined_job_says_it_was_open_already_not_that_it_was_queued(
    client_as, job, training_dirs, django_capture_on_commit_callbacks
):
    """The same settings sent twice (a double click): the second answer names the open job and no "queued"."""
    client = client_as("admin")
    form = {"dataset": job.dataset_id, "base_model": "", "max_steps": 2}
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("training:job_start"), form, follow=True)
        again = client.post(reverse("training:job_start"), form, follow=True).content.decode()
    started = TrainingJob.objects.latest("pk")
    assert f"Job {started.pk} with these settings" in again and "No second job was started." in again
    assert "queued on the train workers" not in again


def test_after_building_sft_records_the_kind_selector_keeps_sft(
    client_as, training_dirs, override_review, cot_correction
):
    """Walked: after an SFT build the dataset form's "Kind" went back to DPO, so the next build (after more
    corrections) was DPO pairs unless the admin noticed."""
    client = client_as("admin")
    response = client.post(reverse("training:dataset_build"), {"kind": "sft", "eval_share": "0"}, follow=True)
    assert PreferenceDataset.objects.get().kind == "sft"
    page = response.content.decode()
    assert "Built “" in page and "SFT record" in page
    assert '<option value="sft" selected>SFT chat records</option>' in page
    assert '<option value="dpo" selected>' not in page
    # A reload of that page keeps it too; a forged kind in the address falls back to DPO, not a 500.
    assert '<option value="sft" selected>' in client.get(response.redirect_chain[-1][0]).content.decode()
    forged = client.get(reverse("training:job_list") + "?kind=grpo")
    assert forged.status_code == 200 and '<option value="dpo" selected>' in forged.content.decode()

    response = client.post(reverse("training:dataset_build"), {"kind": "dpo"}, follow=True)
    assert '<option value="dpo" selected>' in response.content.decode()


def test_with_no_retrain_rule_the_page_says_what_that_means_and_links_the_form_to_whom_may_add_one(
    client_as, make_user
):
    """Walked: "No rules." and "Edit rules in the Django admin." with no way there; an admin-role user who may not
    edit them in the admin is not sent to a 403."""
    from django.test import Client

    superuser = make_user("admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(superuser)
    page = client.get(reverse("training:job_list")).content.decode()
    assert "No rules: a job starts only when someone starts it above." in page
    add = reverse("admin:training_retrainrule_add")
    assert f'<a href="{add}" id="retrain-rule-add">Add a rule</a>' in page
    assert client.get(add).status_code == 200

    page = client_as("admin").get(reverse("training:job_list")).content.decode()  # the role, not a superuser
    assert "No rules: a job starts only when someone starts it above." in page
    assert add not in page and "(a superuser edits them)" in page


def test_the_job_page_says_its_policy_version_is_the_datasets_and_which_is_active_now(client_as, job):
    """The job page said "Policy version: KuaiMod taxonomy v1" while v2 was active: it takes its dataset's version
    by design, and now says so, with the version active now."""
    from moderation.models import PolicyVersion
    from tests.factories import PolicyVersionFactory

    old = PolicyVersionFactory(number=101, is_active=False)
    TrainingJob.objects.filter(pk=job.pk).update(policy_version=old)
    PolicyVersion.objects.filter(policy=old.policy).exclude(pk=old.pk).update(is_active=False)
    active = PolicyVersionFactory(policy=old.policy, number=102)
    client = client_as("admin")
    page = client.get(reverse("training:job_detail", args=[job.pk])).content.decode()
    found = page[page.find("job-policy-version") : page.find("job-policy-version") + 200]
    assert 'KuaiMod taxonomy v101 <span class="hint">(v101, the dataset\'s; v102 is active now)</span>' in page, found
    PolicyVersion.objects.filter(pk=active.pk).update(is_active=False)
    PolicyVersion.objects.filter(pk=old.pk).update(is_active=True)
    page = client.get(reverse("training:job_detail", args=[job.pk])).content.decode()
    assert "is active now" not in page and "(the dataset's)" in page


def test_the_tiny_base_model_is_named_alike_before_and_after_its_run(client_as, job, settings):  # type: ignore[no-untyped-def]
    """Walk hwalk19: a job's base model read "tiny local Llama" while queued and the tiny model's folder once it ran
    (the runner records the folder it built); with TRAINING_BASE_MODEL set, an empty one read "tiny local Llama"."""
    admin = client_as("admin")
    detail, listing = reverse("training:job_detail", args=[job.pk]), reverse("training:job_list")

    def base_cell(url: str) -> str:
        html = admin.get(url).content.decode()
        return html[html.index("Base model") :][:3000] if url == detail else html[html.index("<th>Base model") :]

    assert "<code>tiny local Llama</code>" in base_cell(detail)
    tiny = str(Path(settings.MODELS_DIR) / "tiny-llama")
    TrainingJob.objects.filter(pk=job.pk).update(base_model=tiny)  # as the runner records it
    after = base_cell(detail)
    assert "<code>tiny local Llama</code>" in after and f"({tiny})" in after
    assert "<td>tiny local Llama</td>" in base_cell(listing) and f"<td>{tiny}</td>" not in base_cell(listing)
    TrainingJob.objects.filter(pk=job.pk).update(base_model="")
    settings.TRAINING_BASE_MODEL = "org/base-7b"
    assert "<code>org/base-7b</code>" in base_cell(detail)
