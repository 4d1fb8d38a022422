"""Two nodes and a web server that share nothing but PostgreSQL, Redis and the object store (s3rver).

The web node is this process (live server, its own scratch MEDIA_ROOT); a media worker and an infer/train
worker are Celery processes, each with its own empty MEDIA_ROOT and TRAINING_OUTPUT_DIR. A moderator uploads
in Chromium, the media worker processes, the infer worker decides, the moderator reviews (the player loads
and seeks through presigned Range requests to the store), an admin's DPO job trains on the train worker, the
adapter is promoted and the infer worker decides the video again with it, fetched from the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from moderation.media.models import Video
from moderation.models import Decision
from moderation.review.models import Review, ReviewTask
from tests.workers import database_url
from training.models import TrainingJob

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


def _files(folder: Path, *, skip: str = "") -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not (skip and p.relative_to(folder).as_posix().startswith(skip))
    )


def _wait(predicate: Callable[[], Any], timeout: float, what: str, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for log in logs if log.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.fixture
def nodes(s3_media: Any, tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Start the media node and the infer/train node; yield their scratch folders."""
    base_env = {
        **os.environ,
        **s3_media.env(settings.MEDIA_S3_BUCKET),
        "DJANGO_SETTINGS_MODULE": "workbench.settings_test",
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "DATABASE_URL": database_url(),
        "VLM_MAX_NEW_TOKENS": "8",
    }
    queues = {"media-node": "media,default", "gpu-node": "infer,train"}
    procs, folders = [], {}
    for name, queue in queues.items():
        folder = tmp_path / name
        (folder / "media").mkdir(parents=True)
        folders[name] = folder
        env = {**base_env, "MEDIA_ROOT": str(folder / "media"), "TRAINING_OUTPUT_DIR": str(folder / "training")}
        cmd = [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", queue, "--pool", "solo",
               "--concurrency", "1", "--without-mingle", "--without-gossip", "-n", f"{name}@%h", "-l", "INFO"]  # fmt: skip
        log = tmp_path / f"{name}.log"
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT))
    try:
        yield folders
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def chromium() -> Iterator[Any]:
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            yield browser
        finally:
            browser.close()


def test_upload_to_promotion_across_nodes_that_share_no_disk(
    nodes: dict[str, Path],
    s3_media: Any,
    chromium: Any,
    live_server: Any,
    make_user: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    from moderation.inference.services import model_version_promote
    from moderation.inference.tasks import run_inference
    from moderation.media.demo import synthesize_video
    from training.services import preference_dataset_build, training_job_start

    settings.TRAINING_OUTPUT_DIR = tmp_path / "web-node" / "training"
    call_command("bootstrap", verbosity=0)
    from moderation.policies.models import Policy

    Policy.objects.exclude(slug="kuaimod").update(auto_apply=False)  # one decision (one review) per video
    logs = [tmp_path / "media-node.log", tmp_path / "gpu-node.log"]
    clip = synthesize_video(
        tmp_path / "src" / "deal.mp4", title="deal", on_screen="Add me on WeChat", size=(320, 180),
        min_seconds=3.0, max_seconds=3.0, audio=False,
    )  # fmt: skip
    moderator, reviewer, admin = make_user("moderator"), make_user("moderator"), make_user("admin")

    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    store_responses: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            store_responses.append((r.request.headers.get("range", ""), r.status))
            if r.url.startswith(settings.MEDIA_S3_ENDPOINT_URL)
            else None
        ),
    )

    def sign_in(user) -> None:  # type: ignore[no-untyped-def]
        context.clear_cookies()
        page.goto("/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", "pw-test-123")
        with page.expect_navigation():
            page.keyboard.press("Enter")

    sign_in(moderator)

    # 1. Upload in the browser: the web node streams it into the store.
    page.goto("/videos/")
    page.fill("input[name=title]", "Private deal")
    page.set_input_files("input[name=file]", str(clip))
    with page.expect_navigation():
        page.click("#upload-form button[type=submit]")
    video = Video.objects.get()
    assert _files(Path(settings.MEDIA_ROOT)) == [], "the web node keeps no copy"

    # 2. The media node processes it; the infer node decides; the decision waits in the review queue.
    task = _wait(lambda: ReviewTask.objects.filter(decision__video=video).first(), 240, "a review task", logs)
    video.refresh_from_db()
    assert video.status == Video.Status.READY and video.keyframes.exists()

    # 3. Review in Chromium, by another moderator (no one decides their own upload): the player loads from the
    # store and seeks with Range requests.
    sign_in(reviewer)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    played = page.evaluate(
        """async () => {
            const v = document.querySelector('video[data-player]');
            if (v.readyState < 1) await new Promise((ok, no) => { v.onloadedmetadata = ok; v.onerror = () => no(v.error); });
            const seeked = new Promise(ok => v.addEventListener('seeked', ok, {once: true}));
            v.currentTime = 2.0;
            await seeked;
            return {duration: v.duration, time: v.currentTime, src: v.currentSrc};
        }"""
    )
    assert played["duration"] > 2.5 and abs(played["time"] - 2.0) < 0.5
    assert played["src"].startswith(live_server.url + "/media/videos/")  # the role-checked view …
    assert any(status == 206 for _, status in store_responses), store_responses  # … then the store, by range
    page.keyboard.press("o")
    page.keyboard.type("exagg")  # the model said "private deals" (the on-screen text); the reviewer disagrees
    page.keyboard.press("ArrowDown")  # chosen: its severities are offered
    page.keyboard.press("2")  # medium (a violation always has a severity)
    page.keyboard.press("o")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 30
    while not Review.objects.filter(task=task).exists():
        assert time.monotonic() < deadline, "no review recorded; the screen says:\n" + page.inner_text("body")[:3000]
        time.sleep(0.3)
    review = Review.objects.get(task=task)
    page.wait_for_url("**/review/")  # the queue is empty: back to the list
    assert review.verdict == "override" and review.severity == "medium"

    context.close()

    # 4. A DPO job on the train node; it reads the snapshot from the store and writes the adapter there.
    dataset = preference_dataset_build(created_by=admin)
    assert dataset.train_count == 1
    job = training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 2, "save_steps": 1})
    job = _wait(
        lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).first(), 300, "the job", logs
    )
    assert job.status == "succeeded", job.error + job.log_tail
    version = job.model_version
    assert version.adapter_path == f"stored:training/jobs/{job.pk}/adapter"

    # 5. Promotion: the infer node decides the video again with the adapter it fetched from the store.
    model_version_promote(model_version=version)
    run_inference.delay(video.pk)
    decision = _wait(
        lambda: Decision.objects.filter(video=video, model_version=version).first(), 180, "the new decision", logs
    )
    assert decision.backend == "transformers"
    gpu_files = _files(nodes["gpu-node"] / "media")
    assert f"cache/training/jobs/{job.pk}/adapter/adapter_config.json" in gpu_files
    # Nothing is left in any node's scratch.
    # (the media node's reproduction search keeps keyframe copies in its bounded cache, nothing else)
    assert [f for f in _files(nodes["media-node"] / "media") if not f.startswith("cache/keyframes/")] == []
    assert not [f for f in gpu_files if f.startswith("scratch/")]
