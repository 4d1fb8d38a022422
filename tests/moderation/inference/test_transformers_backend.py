from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from moderation.inference.backends import ContentBundle, Frame, Segment
from moderation.inference.prompts import policy_prompt
from moderation.inference.services import model_version_promote, model_version_register
from moderation.models import Decision, Keyframe, ReviewTask
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from moderation.policies.spec import PolicySpec
from tests.factories import PolicyVersionFactory, SegmentFactory, VideoFactory


@pytest.fixture(autouse=True)
def short_generations(settings):  # type: ignore[no-untyped-def]
    settings.VLM_MAX_NEW_TOKENS = 12


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


def _long_item(title: str, n_segments: int, image_paths: list[str] | None = None) -> ContentBundle:
    """A video whose transcript alone is far longer than the tiny models' context (4096 tokens)."""
    return ContentBundle(
        title=title,
        description="",
        uploader="",
        segments=[
            Segment(i, 2.0 * i, 2.0 * i + 2, f"这个商品效果非常好，加我微信私聊价格 part {i}")
            for i in range(n_segments)
        ],
        frames=[Frame(1, 0.0, True)],
        image_paths=image_paths or [],
        feedback={"views": 1234},
    )


def _recording_generate(backend):  # type: ignore[no-untyped-def]
    """Pass every ``generate`` call through to the model, recording its (rows, prompt length)."""
    calls: list[tuple[int, int]] = []
    real = backend.model.generate

    def generate(**inputs):  # type: ignore[no-untyped-def]
        calls.append(tuple(inputs["input_ids"].shape))
        return real(**inputs)

    backend.model.generate = generate
    return calls


def test_a_prompt_longer_than_the_context_is_cut_in_its_middle_and_the_result_says_how_much():
    """The DPO job's model (the tiny Llama, context 4096) was handed whole transcripts of ~10,000 tokens:
    positions past its context, and attention memory that grows with the square of the length."""
    from moderation.inference.backends.transformers_backend import TransformersBackend
    from training.tiny_model import ensure_tiny_base_model

    backend = TransformersBackend.cached(ensure_tiny_base_model())
    policy = PolicySpec(kuaimod_taxonomy(), SAFE_LABEL)
    long, short = _long_item("The long one", 300), _long_item("A short one", 2)

    results = backend.decide_batch([long, short], policy)

    limit = 4096 - 12  # the context less the new tokens (VLM_MAX_NEW_TOKENS = 12 here)
    assert 3500 < results[0].prompt_tokens <= limit and results[0].prompt_cut_tokens > 5000
    assert results[1].prompt_cut_tokens == 0 and results[1].prompt_tokens < 2000
    # What is kept: the rubric, the head and the tail of the content, and a note of the cut where it was.
    fitted = backend.fitter.fit(policy_prompt(long, policy), context=4096, max_new_tokens=12)
    assert fitted.text.startswith("<|system|>\nYou are a content moderator") and "The long one" in fitted.text
    assert "part 0" in fitted.text and "part 299" in fitted.text and "part 150" not in fitted.text
    assert f"{fitted.cut_tokens} tokens of this item's content cut here to fit the model's context" in fitted.text
    assert "views=1234" in fitted.text and fitted.text.endswith("<|assistant|>\n")


def test_a_long_item_is_not_batched_with_short_ones_so_memory_is_bounded_by_the_token_budget(settings):
    """A batch of 8 was padded to its longest item: one long transcript made all 8 rows as long, and
    the padded attention (rows x length²) took the worker to 21.8 GB."""
    from moderation.inference.backends.transformers_backend import TransformersBackend
    from training.tiny_model import ensure_tiny_base_model

    settings.TRANSFORMERS_BATCH_TOKENS = 8192
    backend = TransformersBackend(ensure_tiny_base_model())
    calls = _recording_generate(backend)
    items = [_long_item("short", 2) for _ in range(3)] + [_long_item("long", 300)] + [_long_item("short", 2)] * 4

    results = backend.decide_batch(items, PolicySpec(kuaimod_taxonomy(), SAFE_LABEL))

    assert len(calls) >= 2 and all(rows * (length + 12) <= 8192 for rows, length in calls), calls
    assert (1, results[3].prompt_tokens) in calls  # the long item alone
    assert [r.prompt_cut_tokens > 0 for r in results] == [False] * 3 + [True] + [False] * 4  # in the given order
    assert sum(rows for rows, _ in calls) == 8


def test_a_vlm_prompt_is_cut_counting_its_image_tokens(tiny_llava, tmp_path, settings):
    from moderation.inference.backends.transformers_backend import TransformersBackend

    settings.TRANSFORMERS_MAX_CONTEXT_TOKENS = 3000  # this tiny tokenizer spends ~2300 tokens on the rubric
    image = tmp_path / "f.jpg"
    image.write_bytes(_jpeg((10, 200, 10)))
    backend = TransformersBackend.cached(tiny_llava)

    [result] = backend.decide_batch(
        [_long_item("with frames", 200, [str(image)] * 3)], PolicySpec(kuaimod_taxonomy(), SAFE_LABEL)
    )

    assert 2800 < result.prompt_tokens <= 3000 - 12 and result.prompt_cut_tokens > 0
