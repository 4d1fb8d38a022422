from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from moderation.inference.backends import ContentBundle, Frame, Segment
from moderation.inference.services import model_version_promote, model_version_register
from moderation.models import Decision, Keyframe, ReviewTask
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from moderation.policies.spec import PolicySpec
from tests.factories import PolicyVersionFactory, SegmentFactory, VideoFactory
from tests.tiny_models import build_tiny_llava


@pytest.fixture(autouse=True)
def short_generations(settings):  # type: ignore[no-untyped-def]
    settings.VLM_MAX_NEW_TOKENS = 12


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory):  # type: ignore[no-untyped-def]
    return str(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))


def _jpeg(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_batched_generate_returns_one_result_per_item_with_token_counts(tiny_llava, tmp_path):
    from moderation.inference.backends.transformers_backend import TransformersBackend

    image = tmp_path / "f.jpg"
    image.write_bytes(_jpeg((200, 10, 10)))
    items = [
        ContentBundle(
            title=f"video {i}",
            description="",
            uploader="",
            segments=[Segment(1, 0, 1, "hi there")],
            frames=[Frame(1, 0.0, True)],
            image_paths=[str(image)] * (i + 1),
        )
        for i in range(2)
    ]
    backend = TransformersBackend.cached(tiny_llava)
    results = backend.decide_batch(items, PolicySpec(kuaimod_taxonomy(), SAFE_LABEL))

    assert len(results) == 2
    for r in results:
        assert r.prompt_tokens > 100 and r.completion_tokens > 0
        # random weights: the output is not a valid CoT, and that is recorded rather than raised
        assert r.raw_output and r.parse_error and r.label == ""
    assert TransformersBackend.cached(tiny_llava) is backend  # loaded once per process


@pytest.mark.integration
def test_worker_runs_the_transformers_backend_end_to_end(tiny_llava, celery_worker):
    from moderation.inference.tasks import run_inference

    PolicyVersionFactory()
    version = model_version_register(name="tiny-llava", backend="transformers", base_model=tiny_llava)
    model_version_promote(model_version=version)
    video = VideoFactory(title="Cheap phones, add me on WeChat")
    SegmentFactory(video=video, text="message me privately")
    for i in range(3):
        Keyframe.objects.create(
            video=video,
            index=i,
            timestamp=float(i),
            selected=True,
            image=ContentFile(_jpeg((i * 60, 100, 100)), name=f"k{i}.jpg"),
        )

    run_inference.delay(video.pk)
    decision = _wait_for(lambda: Decision.objects.filter(video=video).first())

    assert decision.model_version == version and decision.backend == "transformers"
    assert decision.parse_error and decision.raw_output
    assert decision.latency_ms > 0 and decision.prompt_tokens > 0
    assert ReviewTask.objects.get(decision=decision).priority == 100  # unparseable output goes first


def _wait_for(fn, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the worker")
