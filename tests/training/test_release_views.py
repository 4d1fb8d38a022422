"""The model-version, evaluation and comparison screens (admins only)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.inference.services import model_version_register, model_version_serving
from training.evaluation import evaluation_execute, evaluation_start
from training.models import EvaluationRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(policy_version, tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    path = tmp_path / "set.jsonl"
    rows = [
        {"pid": "1", "tag": "正向", "title": "<script>alert(1)</script> noodles", "OCR": "null", "ASR": "null"},
        {"pid": "2", "tag": "引导私下交易", "title": "加微信 私下交易", "OCR": "加微信", "ASR": "null"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    candidate = model_version_register(name="cand-<b>", backend="evidence_baseline")
    out = []
    for version in (model_version_serving(), candidate):
        run = evaluation_start(model_version=version, created_by=None, eval_set="kuaimod_file", file_path=str(path))
        out.append(evaluation_execute(run_id=run.pk))
    # The same backend scores the same; the gate promotes only a better candidate, so the serving
    # version's run is recorded as having scored lower on this set.
    EvaluationRun.objects.filter(pk=out[0].pk).update(metrics={**out[0].metrics, "binary_accuracy": 0.5})
    out[0].refresh_from_db()
    return out


def test_only_admins_see_release_screens(client_as, runs):
    for role in ("moderator", "labeler"):
        client = client_as(role)
        assert client.get(reverse("training:model_list")).status_code == 403
        assert client.post(reverse("training:model_promote", args=[runs[1].model_version_id])).status_code == 403


def test_compare_page_shows_deltas_and_two_svg_heatmaps(client_as, runs):
    a, b = runs
    page = client_as("admin").get(reverse("training:evaluation_compare"), {"a": a.pk, "b": b.pk}).content.decode()
    assert page.count('<svg class="heatmap"') == 2 and "<rect" in page
    assert "strict_accuracy" in page and "format_validity" in page and "B − A" in page
    assert "cand-&lt;b&gt;" in page and "cand-<b>" not in page


def test_models_page_lists_gate_verdict_and_promote_is_audited(client_as, runs):
    client = client_as("admin")
    page = client.get(reverse("training:model_list")).content.decode()
    assert "Gate: passes." in page and "serving" in page
    response = client.post(reverse("training:model_promote", args=[runs[1].model_version_id]), follow=True)
    assert "now serves new decisions" in response.content.decode()
    assert model_version_serving().pk == runs[1].model_version_id


def test_refused_promotion_shows_why(client_as, policy_version):
    version = model_version_register(name="untested", backend="evidence_baseline")
    response = client_as("admin").post(reverse("training:model_promote", args=[version.pk]), follow=True)
    assert (
        response.status_code == 200
        and "Promotion refused: untested has no finished evaluation" in response.content.decode()
    )


def test_evaluation_detail_polls_until_done(client_as, runs):
    page = client_as("admin").get(reverse("training:evaluation_detail", args=[runs[0].pk])).content.decode()
    assert "every 2s" not in page and "binary_accuracy" in page and '<svg class="heatmap"' in page
    # The 95% interval is a pair: shown as "low – high" (it was blank).
    lo, hi = runs[1].metrics["binary_accuracy_ci95"]
    candidate = client_as("admin").get(reverse("training:evaluation_detail", args=[runs[1].pk])).content.decode()
    assert (
        f'<th title="binary_accuracy_ci95">Binary accuracy, 95% interval</th><td>{lo:.3f} – {hi:.3f}</td>' in candidate
    )


def test_job_form_starts_a_grpo_job_with_lora_settings(
    client_as, training_dirs, override_review, django_capture_on_commit_callbacks
):
    from training.models import TrainingJob
    from training.services import preference_dataset_build

    dataset = preference_dataset_build(created_by=None)
    form = {
        "dataset": dataset.pk,
        "kind": "grpo",
        "max_steps": 3,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.1,
        "lora_target_modules": "q_proj,k_proj",
        "save_steps": 2,
        "num_generations": 2,
        "reward_critique_weight": 0,
    }
    with django_capture_on_commit_callbacks():
        response = client_as("admin").post(reverse("training:job_start"), form)
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and job.kind == "grpo"
    assert job.params["lora_r"] == 4 and job.params["lora_target_modules"] == ["q_proj", "k_proj"]
    assert job.params["save_steps"] == 2 and job.params["reward_critique_weight"] == 0.0
    assert job.policy_version_id == override_review.decision.policy_version_id


def test_accelerate_launcher_builds_its_command_and_reports_a_missing_config(training_dirs, override_review, settings):
    from training.runners.common import accelerate_command, run_job_launched
    from training.services import preference_dataset_build, training_job_claim, training_job_start

    assert (
        accelerate_command(7, "training/accelerate/multi_gpu.yaml")[-5:]
        == ["--config_file", "training/accelerate/multi_gpu.yaml", "-m", "training.runners.launch", "7"][-5:]
    )
    settings.TRAINING_LAUNCHER = "accelerate"
    settings.TRAINING_ACCELERATE_CONFIG = "/nonexistent/accelerate.yaml"
    job = training_job_start(dataset=preference_dataset_build(created_by=None), created_by=None)
    training_job_claim(job_id=job.pk)
    run_job_launched(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "Accelerate config /nonexistent/accelerate.yaml does not exist" in job.error


def test_promotion_can_target_one_policy_and_leaves_the_global_model(client_as, runs, policy_version):
    from moderation.models import AuditEvent

    global_before = model_version_serving()
    policy = policy_version.policy
    response = client_as("admin").post(
        reverse("training:model_promote", args=[runs[1].model_version_id]), {"policy": policy.pk}, follow=True
    )
    assert f"under {policy.name}" in response.content.decode()
    policy.refresh_from_db()
    assert policy.serving_model_id == runs[1].model_version_id
    assert model_version_serving() == global_before
    assert model_version_serving(policy=policy).pk == runs[1].model_version_id
    event = AuditEvent.objects.filter(action="model_promoted").latest("pk")
    assert event.payload["scope"] == policy.slug


def test_an_unfinished_evaluation_says_what_it_waits_for_not_zero_items(client_as, runs):
    """A queued or running evaluation said "Queued · 0 items" for as long as it ran (the count is only
    known at the end): it now says when it started and what it is waiting for."""
    path = runs[0].file_path
    # Two models' evaluations (the same one started twice is one run: ``evaluation_start``).
    first, second = (
        evaluation_start(model_version=version, created_by=None, eval_set="kuaimod_file", file_path=path)
        for version in (model_version_serving(), runs[1].model_version)
    )
    EvaluationRun.objects.filter(pk=first.pk).update(status=EvaluationRun.Status.RUNNING)
    client = client_as("admin")
    queued = client.get(reverse("training:evaluation_detail", args=[second.pk])).content.decode()
    assert "0 items" not in queued and "1 evaluation started before this one is still queued or running" in queued
    running = client.get(reverse("training:evaluation_detail", args=[first.pk])).content.decode()
    assert "0 items" not in running and "the scores appear when it finishes" in running
    evaluation_execute(run_id=first.pk)
    done = client.get(reverse("training:evaluation_detail", args=[first.pk])).content.decode()
    assert 'id="evaluation-progress"' not in done and "items · finished" in done
    first.refresh_from_db()
    assert first.n_decided == first.n_items > 0 and first.started_at is not None


def test_a_running_evaluation_shows_how_many_items_are_decided_and_the_time_left(client_as, runs):
    """A CPU evaluation of a VLM runs for tens of minutes: the screen counts the decided items (the
    worker records each batch) and estimates the rest at the pace so far."""
    run = evaluation_start(
        model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=runs[0].file_path
    )
    started = timezone.now() - timedelta(minutes=4)
    EvaluationRun.objects.filter(pk=run.pk).update(
        status=EvaluationRun.Status.RUNNING, started_at=started, n_items=40, n_decided=0
    )
    client = client_as("admin")
    page = client.get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    assert "decided 0 of 40 items" in page and "the first batch is on its way" in page
    EvaluationRun.objects.filter(pk=run.pk).update(n_decided=8)
    page = client.get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    assert "decided 8 of 40 items" in page and "about 16 min left" in page
    assert '<progress value="8" max="40"' in page


def test_comparing_an_evaluation_that_does_not_exist_goes_back_to_the_list_saying_which(client_as, runs):
    """?a=<a deleted or mistyped run>&b= was the bare "There is nothing at this address" page."""
    admin = client_as("admin")

    response = admin.get(reverse("training:evaluation_compare"), {"a": runs[0].pk, "b": 999_999})

    assert response.status_code == 302 and response["Location"] == reverse("training:model_list") + "#evaluations"
    page = admin.get(response["Location"]).content.decode()
    assert "There is no evaluation 999999 (B): pick two evaluations to compare." in page


@pytest.mark.parametrize(
    ("eval_set", "said"),
    [("kuaimod_file", "Not started: "), ("no-such-set", "Not started: Eval set: Select a valid choice.")],
)
def test_a_refused_evaluation_start_is_said_where_the_page_opens(client_as, policy_version, eval_set, said):  # type: ignore[no-untyped-def]
    """Seen in Chromium: a refused "Start evaluation" drew the screen again at its top, the registry above
    the form filling it, the reason below, off screen; a field's own error was not shown at all."""
    import re

    response = client_as("admin").post(
        reverse("training:evaluation_start"),
        {"model_version": model_version_serving().pk, "eval_set": eval_set, "file_path": ""},
    )

    assert response.status_code == 400 and not EvaluationRun.objects.exists()
    html = response.content.decode()
    summary = re.search(r'<p class="error" role="alert" id="evaluate-error" tabindex="-1" autofocus>(.*?)</p>', html)
    assert summary is not None and summary.group(1).startswith(said) and len(summary.group(1)) > len(said)


def test_every_training_screen_writes_a_measure_to_three_decimals(client_as, runs):
    """The same accuracy read 0.9167 on the evaluation and compare pages and 0.917 on the model versions
    screen; a job's loss had 4 places and its reward 3."""
    from training.models import PreferenceDataset, TrainingJob
    from workbench.formatting import metric_text

    a, b = runs
    third = {"binary_accuracy": 11 / 12, "strict_accuracy": 2 / 3, "format_validity": 1.0, "violative_recall": 0.123456}
    third |= {"binary_accuracy_ci95": [0.61523, 0.98555]}
    for run in runs:
        EvaluationRun.objects.filter(pk=run.pk).update(
            metrics={**run.metrics, **third}, per_category={"major_recall": {"引导私下交易": 0.66666}}
        )
    job = TrainingJob.objects.create(
        dataset=PreferenceDataset.objects.create(name="pairs"),
        history=[{"step": 1, "loss": 0.912345, "reward": 0.1}, {"step": 2, "loss": 0.401234, "reward": 0.25}],
    )
    client = client_as("admin")
    pages = {
        "evaluation": client.get(reverse("training:evaluation_detail", args=[b.pk])).content.decode(),
        "compare": client.get(reverse("training:evaluation_compare"), {"a": a.pk, "b": b.pk}).content.decode(),
        "models": client.get(reverse("training:model_list")).content.decode(),
        "job": client.get(reverse("training:job_detail", args=[job.pk])).content.decode(),
    }
    for name in ("evaluation", "compare", "models"):
        assert "0.917" in pages[name] and "0.9167" not in pages[name], name
    assert "0.615 – 0.986" in pages["evaluation"] and "0.123<" in pages["evaluation"]
    assert "0.667<" in pages["evaluation"] and "0.667<" in pages["compare"]  # per category
    assert "0.000<" in pages["compare"] and "0.0000" not in pages["compare"]  # B − A
    assert "loss 0.401 – 0.912" in pages["job"] and "reward 0.100 – 0.250" in pages["job"]

    assert [metric_text(v) for v in (None, "", 0.5, -0.0001, True, float("nan"), "n/a")] == [
        "—", "—", "0.500", "0.000", "true", "nan", "n/a",
    ]  # fmt: skip


def test_a_candidate_whose_evaluation_is_under_way_is_told_so_not_to_evaluate_it(client_as, policy_version):
    """The registry said "has no finished evaluation; evaluate it first" beside a candidate whose evaluation the
    admin had just started, as if it had been lost."""
    from moderation.labels.models import ItemLabel
    from tests.factories import VideoFactory

    ItemLabel.objects.create(video=VideoFactory(), label="正向", source="import")  # a gold set of one
    version = model_version_register(name="fresh", backend="evidence_baseline")
    run = evaluation_start(model_version=version, created_by=None, policy_version=policy_version)
    client = client_as("admin")
    page = client.get(reverse("training:model_list")).content.decode()
    assert f"fresh has no finished evaluation yet: evaluation #{run.pk} is queued" in page
    assert "evaluate it first" not in page
    EvaluationRun.objects.filter(pk=run.pk).update(status=EvaluationRun.Status.FAILED)
    page = client.get(reverse("training:model_list")).content.decode()
    assert (
        f'<li class="error">fresh has no finished evaluation: evaluation #{run.pk} failed; evaluate it again.' in page
    )


def test_a_version_never_evaluated_is_said_neutrally_with_the_way_to_evaluate_it(client_as, policy_version):
    """A version nobody has evaluated yet read "has no finished evaluation" in red, as if something had failed
    before anything was tried: it reads "Not evaluated yet" with a link to the Evaluate form for it."""
    import re

    version = model_version_register(name="brand-new", backend="evidence_baseline")
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    row = re.search(r'<tr data-version="brand-new">(.*?)</tr>', page, re.S)
    assert row is not None
    assert 'class="error"' not in row[1] and "has no finished evaluation" not in row[1]
    assert 'class="hint gate-not-evaluated">Not evaluated yet' in row[1]
    assert f'href="{reverse("training:model_list")}?evaluate={version.pk}">Evaluate brand-new</a>' in row[1]
    # The link opens the form with this version chosen.
    form = client_as("admin").get(reverse("training:model_list"), {"evaluate": version.pk}).content.decode()
    assert re.search(rf'<option value="{version.pk}" selected>brand-new</option>', form)


def test_compare_is_offered_only_with_two_evaluations_and_the_empty_list_says_where_to_start(client_as, policy_version):
    """Walked on the demo data: with no evaluation at all the list offered "Compare A and B", which could only
    answer "Pick two evaluations", and its empty row did not say how to get one."""
    from tests.factories import ModelVersionFactory

    admin = client_as("admin")
    url = reverse("training:model_list")

    empty = admin.get(url).content.decode()
    assert "Compare A and B</button>" not in empty and "No evaluations yet: start one under “Evaluate” above." in empty

    EvaluationRun.objects.create(
        model_version=ModelVersionFactory(), policy_version=policy_version, eval_set_key="gold"
    )
    one = admin.get(url).content.decode()
    assert "Compare A and B</button>" not in one and 'id="compare-hint"' in one

    EvaluationRun.objects.create(
        model_version=ModelVersionFactory(), policy_version=policy_version, eval_set_key="gold"
    )
    two = admin.get(url).content.decode()
    assert "Compare A and B</button>" in two and 'id="compare-hint"' not in two


def test_a_finished_evaluations_headings_go_down_one_level_at_a_time(client_as, runs):
    """axe in Chromium on a finished evaluation (heading-order, moderate): its "Per category" and "Confusion
    matrix" were h3 straight under the page's h1, so a screen reader's outline skipped a level."""
    import re

    page = client_as("admin").get(reverse("training:evaluation_detail", args=[runs[1].pk])).content.decode()
    main = page.split("<main", 1)[1]

    levels = [int(n) for n in re.findall(r"<h([1-6])[\s>]", main)]
    assert "Confusion matrix" in main and levels[0] == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels


@pytest.mark.django_db
def test_the_evaluate_forms_file_box_says_which_set_it_is_for(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked at 1440x900 (hwalk15): under "Evaluation set: Gold set (human-labelled videos)" stood a box labelled
    only "File", as if the gold set needed one too."""
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    assert "<label>File (KuaiMod-format file only) <input" in page
    assert "the gold set needs none." in page
    assert "<label>File <input" not in page


def test_the_loss_and_reward_charts_name_their_axes_and_show_their_ranges(client_as, db):
    """Walked (hwalk22 a09): the loss chart was a line in a box, no axis named, no value at either end."""
    import re

    from training.models import PreferenceDataset, TrainingJob

    job = TrainingJob.objects.create(
        dataset=PreferenceDataset.objects.create(name="pairs"),
        history=[{"step": 1, "loss": 0.693, "reward": 0.1}, {"step": 2, "loss": 0.654, "reward": 0.25}],
    )
    page = client_as("admin").get(reverse("training:job_detail", args=[job.pk])).content.decode()
    for chart, name, top, bottom in (("loss", "loss", "0.693", "0.654"), ("reward", "mean reward", "0.250", "0.100")):
        figure = page.split(f'id="{chart}-chart"')[1].split("</figure>")[0]
        y = re.search(r'<div class="chart-y"[^>]*>(.*?)</div>', figure)
        x = re.search(r'<div class="chart-x"[^>]*>(.*?)</div>', figure)
        assert y is not None and x is not None, chart
        assert re.findall(r"<span[^>]*>([^<]*)</span>", y.group(1)) == [top, name, bottom]
        assert re.findall(r"<span[^>]*>([^<]*)</span>", x.group(1)) == ["1", "training step", "2"]
