"""The walking skeleton, end to end, through the browser views, the real Celery worker on the
real Redis broker, real PostgreSQL, ffmpeg, espeak-ng, faster-whisper and TRL:

demo video → upload → media worker (probe, keyframes, speech) → inference worker (evidence
baseline, five-stage CoT) → review queue → moderator override → labeler CoT correction →
admin builds DPO pairs → admin starts a DPO job → train worker → adapter registered.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from moderation.media.demo import synthesize_video
from moderation.models import Decision, ModelVersion, Review, ReviewTask, Video
from moderation.policies.services import policy_seed_kuaimod
from training.models import PreferenceDataset, TrainingJob

pytestmark = pytest.mark.integration


def wait_for(fn: Callable[[], Any], timeout: float = 180.0, what: str = "the worker") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def login(make_user: Callable[..., Any], role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def test_one_video_from_upload_to_a_fine_tune_job(celery_worker, make_user, tmp_path: Path):
    policy_seed_kuaimod()
    clip = synthesize_video(
        tmp_path / "deal.mp4",
        title="Cheap phones",
        speech="Add me on WeChat for a private deal. Message me privately outside the app.",
        on_screen="Private deal",
        size=(320, 180),
        min_seconds=2.0,
        max_seconds=6.0,
    )

    # 1-2. A moderator uploads the video in the browser.
    moderator = login(make_user, "moderator")
    upload = SimpleUploadedFile("deal.mp4", clip.read_bytes(), content_type="video/mp4")
    response = moderator.post("/videos/upload/", {"title": "Cheap phones", "file": upload})
    assert response.status_code == 302
    video = Video.objects.get()

    # 3-4. The media worker extracts keyframes and speech; the inference worker decides.
    task = wait_for(lambda: ReviewTask.objects.filter(decision__video=video).first(), what="a review task")
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    assert video.duration and video.duration >= 2.0 and video.has_audio
    assert video.keyframes.count() >= 2
    speech = " ".join(s.text.lower() for s in video.segments.all())
    assert "private" in speech
    decision = task.decision
    assert decision.label == "引导私下交易" and decision.is_violation
    assert [s["key"] for s in decision.cot][-1] == "final_judgment"
    assert decision.policy_version.is_active and decision.model_version.backend == "evidence_baseline"
    page = moderator.get(f"/videos/{video.pk}/").content.decode()
    assert "data-seek" in page and "Cheap phones" in page

    # 5. Another moderator (no one reviews their own upload) claims it, sees player, keyframes, transcript
    # and CoT, and overrides the label.
    reviewer = login(make_user, "moderator")
    response = reviewer.post("/review/claim/")
    assert response.status_code == 302 and response["Location"] == f"/review/{task.pk}/"
    screen = reviewer.get(f"/review/{task.pk}/").content.decode()
    assert "<video" in screen and "Content extraction" in screen and "private" in screen.lower()
    response = reviewer.post(
        f"/review/{task.pk}/submit/",
        {
            "verdict": "override",
            "label": "虚假承诺福利",
            "severity": "medium",
            "note": "It is a fake giveaway, not a private deal.",
        },
    )
    assert response.status_code == 302
    review = Review.objects.get(task=task)
    assert (review.verdict, review.label) == ("override", "虚假承诺福利")

    # 6. A labeler corrects the model's CoT; the edit is stored beside the original.
    labeler = login(make_user, "labeler")
    form = {f"stage-{s['key']}": s["text"] for s in decision.cot}
    form["stage-analysis"] = "The speaker promises a private deal to lure viewers into a fake giveaway."
    # The verdict stage concludes the new label (a correction whose final judgment names another is refused).
    form["stage-final_judgment"] = "Violation: 虚假承诺福利, a fake giveaway that lures viewers away from the app."
    form.update({"label": "虚假承诺福利", "base_revision": "0"})
    response = labeler.post(f"/annotation/corrections/{decision.pk}/", form)
    assert response.status_code == 302
    decision.refresh_from_db()
    assert decision.correction.diff[0]["key"] == "analysis"
    assert decision.cot[1]["text"] != form["stage-analysis"]  # the model's original is untouched

    # 7. An admin builds DPO preference pairs (TRL prompt/chosen/rejected JSONL).
    admin = login(make_user, "admin")
    assert admin.post("/training/datasets/build/", {"kind": "dpo"}).status_code == 302
    dataset = PreferenceDataset.objects.get()
    rows = [json.loads(line) for line in Path(dataset.jsonl_path).read_text().splitlines()]
    assert len(rows) == 1 and {"prompt", "chosen", "rejected"} <= set(rows[0])
    assert "虚假承诺福利" in rows[0]["chosen"] and "引导私下交易" in rows[0]["rejected"]

    # 8. The admin starts a DPO job; the train worker runs TRL + LoRA and registers the adapter.
    response = admin.post("/training/jobs/start/", {"dataset": dataset.pk, "base_model": "", "max_steps": 2})
    assert response.status_code == 302
    job = TrainingJob.objects.get()
    job = wait_for(
        lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).first(),
        timeout=300,
        what="the DPO job",
    )
    assert job.status == "succeeded", job.error
    assert job.step == 2 and job.history and all("loss" in h for h in job.history)
    version = ModelVersion.objects.get(pk=job.model_version_id)
    assert (Path(version.adapter_path) / "adapter_config.json").exists()
    detail = admin.get(f"/training/jobs/{job.pk}/").content.decode()
    assert re.search(r"2\s*/\s*2", detail) and "<svg" in detail
    assert Decision.objects.count() == 1
