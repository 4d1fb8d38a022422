"""One rule fits every local model's prompt to its context (moderation.inference.backends.fitting).

The transformers backend cut over-long items in their middle; the vLLM backend sent them whole, and a
policy whose rubric alone was longer than the model's context went to the model anyway (an obscure
generate error, or memory). Now both backends cut through the same ``PromptFitter``, a rubric too long
for the model is refused with the numbers, and a live decision records how much its model did not read.
"""

from __future__ import annotations

import re
import sys

import pytest
from django.urls import reverse

from moderation.inference.backends import ContentBundle, Frame, Segment
from moderation.inference.backends.fitting import PromptFitter, PromptTooLong
from moderation.inference.prompts import policy_prompt
from moderation.inference.services import model_version_promote, model_version_register
from moderation.labels.models import ItemLabel
from moderation.models import Decision, Video
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from moderation.policies.spec import PolicySpec
from tests.factories import SegmentFactory, VideoFactory
from tests.vllm_stub import vllm_stub

CUT = "tokens of this item's content cut here to fit the model's context"
RUBRIC_TOO_LONG = re.compile(
    r"^The policy's rubric is ([\d,]+) tokens; model (\S+) reads 500 \(488 once 12 are kept for its answer\), "
    r"so no item's content fits beside it\. Shorten the policy version's rubric"
)


@pytest.fixture
def tiny() -> str:
    from training.tiny_model import ensure_tiny_base_model

    return ensure_tiny_base_model()


@pytest.fixture(autouse=True)
def short_generations(settings):  # type: ignore[no-untyped-def]
    settings.VLM_MAX_NEW_TOKENS = 12


def _long_item(n_segments: int = 300) -> ContentBundle:
    """~10,000 tokens of transcript: far more than the tiny model's 4096."""
    return ContentBundle(
        title="A whole hour of live-stream selling",
        description="",
        uploader="",
        segments=[Segment(i, 2.0 * i, 2.0 * i + 2, f"加我微信私聊价格 说明 part {i}") for i in range(n_segments)],
        frames=[Frame(1, 0.0, True)],
    )


def _policy() -> PolicySpec:
    return PolicySpec(kuaimod_taxonomy(), SAFE_LABEL)


def test_the_shared_fitter_cuts_the_middle_of_the_content_counting_with_the_models_tokenizer(tiny):
    fitter = PromptFitter.load(tiny)
    prompt = policy_prompt(_long_item(), _policy())

    fitted = fitter.fit(prompt, context=4096, max_new_tokens=12)

    assert fitted.n_tokens <= 4096 - 12 and fitted.cut_tokens > 5000
    assert fitted.n_tokens == len(fitter.tokenizer(fitted.text)["input_ids"])  # counted as the model reads it
    # What a backend that applies the template itself (vLLM) sends: the prompt, its content cut.
    assert fitted.prompt.system == prompt.system
    assert f"{fitted.cut_tokens} {CUT}" in fitted.prompt.user
    assert "part 0" in fitted.prompt.user and "part 299" in fitted.prompt.user and "part 150" not in fitted.prompt.user
    short = fitter.fit(policy_prompt(_long_item(2), _policy()), context=4096, max_new_tokens=12)
    assert short.cut_tokens == 0 and short.prompt.user == policy_prompt(_long_item(2), _policy()).user


def test_a_rubric_longer_than_the_models_context_is_refused_with_the_numbers(tiny):
    fitter = PromptFitter.load(tiny)
    prompt = policy_prompt(_long_item(2), _policy())

    with pytest.raises(PromptTooLong) as caught:
        fitter.fit(prompt, context=500, max_new_tokens=12)

    match = RUBRIC_TOO_LONG.match(str(caught.value))
    assert match, str(caught.value)
    assert int(match.group(1).replace(",", "")) > 488 and match.group(2) == tiny


def _serving(tiny: str, policy_version) -> None:  # type: ignore[no-untyped-def]
    model_version_promote(model_version=model_version_register(name="dpo-job", backend="transformers", base_model=tiny))


def test_a_live_decision_under_a_rubric_too_long_for_the_model_fails_readably(
    tiny, policy_version, settings, client_as
):
    from moderation.inference.tasks import run_inference

    settings.TRANSFORMERS_MAX_CONTEXT_TOKENS = 500  # the tiny model spends 540 on the rubric
    _serving(tiny, policy_version)
    moderator = client_as("moderator")
    # Never decided, so never routed: open to its uploader (and admins) only.
    video = VideoFactory(title="Noodles", created_by_id=moderator.session["_auth_user_id"])
    SegmentFactory(video=video, text="how to cook noodles")

    assert run_inference(video.pk) is None

    video.refresh_from_db()
    assert video.status == Video.Status.FAILED and not Decision.objects.filter(video=video).exists()
    assert video.error.startswith("Model inference failed: The policy's rubric is "), video.error
    assert RUBRIC_TOO_LONG.match(video.error.removeprefix("Model inference failed: "))
    page = moderator.get(reverse("moderation:video_detail", args=[video.pk]))
    assert page.status_code == 200 and "Model inference failed: The policy&#x27;s rubric is " in page.content.decode()


def test_an_evaluation_under_a_rubric_too_long_for_the_model_fails_with_the_reason(tiny, policy_version, settings):
    from training.evaluation import evaluation_execute, evaluation_start

    settings.TRANSFORMERS_MAX_CONTEXT_TOKENS = 500  # the tiny model spends 540 on the rubric
    video = VideoFactory(title="Noodles")
    ItemLabel.objects.create(video=video, label=SAFE_LABEL, source=ItemLabel.Source.REVIEW)
    version = model_version_register(name="dpo-job", backend="transformers", base_model=tiny)

    run = evaluation_execute(run_id=evaluation_start(model_version=version, created_by=None).pk)

    assert run is not None and run.status == "failed" and run.finished_at is not None
    assert RUBRIC_TOO_LONG.match(run.error), run.error  # as it is, not "PromptTooLong: …"
    assert run.n_decided == 0


def test_a_rerun_under_a_rubric_too_long_for_the_model_fails_with_the_reason(tiny, policy_version, settings):
    from moderation.inference.models import DecisionRerun
    from moderation.inference.services import decision_rerun_run
    from tests.factories import DecisionFactory

    settings.TRANSFORMERS_MAX_CONTEXT_TOKENS = 500  # the tiny model spends 540 on the rubric
    version = model_version_register(name="dpo-job", backend="transformers", base_model=tiny)
    decision = DecisionFactory(policy_version=policy_version, model_version=version, backend="transformers")
    rerun = DecisionRerun.objects.create(decision=decision)

    rerun = decision_rerun_run(rerun_id=rerun.pk)

    assert rerun.status == DecisionRerun.Status.FAILED
    assert rerun.error.startswith("The model dpo-job could not re-run: The policy's rubric is "), rerun.error


def test_a_live_decision_records_how_many_prompt_tokens_its_model_did_not_read(tiny, policy_version):
    from moderation.inference.services import decision_create_for_video

    _serving(tiny, policy_version)
    video = VideoFactory(title="A whole hour of live-stream selling")
    for i in range(300):
        SegmentFactory(video=video, index=i, start=2.0 * i, end=2.0 * i + 2, text=f"加我微信私聊价格 说明 part {i}")
    short = VideoFactory(title="Noodles")

    decision = decision_create_for_video(video_id=video.pk)
    whole = decision_create_for_video(video_id=short.pk)

    decision.refresh_from_db()
    assert decision.prompt_cut_tokens > 5000 and 0 < decision.prompt_tokens <= 4096 - 12
    assert whole.prompt_cut_tokens == 0


def test_the_vllm_server_backend_cuts_a_long_prompt_with_the_same_fitter(tiny, settings):
    from moderation.inference.backends.vllm_backend import VllmServerBackend

    settings.VLLM_MAX_MODEL_LEN = 4096
    with vllm_stub('{"label": "正向", "confidence": 0.5}') as stub:
        backend = VllmServerBackend(stub.url, tiny)
        [result] = backend.decide_batch([_long_item()], _policy())

        [body] = stub.bodies
        user = body["messages"][1]["content"][-1]["text"]
        assert f"{result.prompt_cut_tokens} {CUT}" in user and result.prompt_cut_tokens > 5000
        assert "part 0" in user and "part 299" in user and "part 150" not in user

        settings.VLLM_MAX_MODEL_LEN = 500
        with pytest.raises(PromptTooLong):
            backend.decide_batch([_long_item(2)], _policy())
        assert len(stub.bodies) == 1  # refused here, never sent


def test_the_vllm_offline_backend_cuts_a_long_prompt_with_the_same_fitter(tiny, settings, monkeypatch):
    from moderation.inference.backends import vllm_backend
    from tests.moderation.inference.test_qwen_vl import _Recorder

    recorder = _Recorder('{"label": "正向", "confidence": 0.5}')
    for name, module in recorder.modules().items():  # vllm itself runs on GPU nodes only
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(vllm_backend.VllmOfflineBackend, "_cache", {})
    settings.VLLM_SERVER_URL = ""
    settings.VLLM_MAX_MODEL_LEN = 4096

    backend = vllm_backend.vllm_backend_for(tiny)
    long, short = backend.decide_batch([_long_item(), _long_item(2)], _policy())

    [(messages, _params, _lora)] = recorder.chats
    sent = [m[1]["content"][-1]["text"] for m in messages]
    assert f"{long.prompt_cut_tokens} {CUT}" in sent[0] and long.prompt_cut_tokens > 5000
    assert short.prompt_cut_tokens == 0 and CUT not in sent[1]


def _sent_tokens(tiny: str, body_messages) -> int:  # type: ignore[no-untyped-def]
    """The prompt a vLLM engine reads from these chat messages, in the model's tokens."""
    from moderation.inference.prompts import Prompt

    fitter = PromptFitter.load(tiny)
    system, user = body_messages[0]["content"], body_messages[1]["content"][-1]["text"]
    return fitter.count(fitter.text(Prompt(system, user, []), user), [])


def test_the_vllm_server_backend_caps_the_answer_so_prompt_and_answer_fit_the_context(tiny, settings):
    """Asked for a 4,000-token answer with 4,096 of context, vLLM was sent max_tokens=4000 (or the rubric
    was refused as too long); the answer is now capped at half the context, as transformers caps it."""
    from moderation.inference.backends.vllm_backend import VllmServerBackend

    settings.VLLM_MAX_MODEL_LEN = 4096
    settings.VLM_MAX_NEW_TOKENS = 4000
    with vllm_stub('{"label": "正向", "confidence": 0.5}') as stub:
        [result] = VllmServerBackend(stub.url, tiny).decide_batch([_long_item()], _policy())
        # A client on a node without the model's tokenizer cannot cut the prompt, but still caps the answer.
        VllmServerBackend(stub.url, "no-such-org/no-such-model").decide_batch([_long_item(2)], _policy())

    cut, uncut = stub.bodies
    assert cut["max_tokens"] == 2048 and result.prompt_cut_tokens > 0
    assert _sent_tokens(tiny, cut["messages"]) + cut["max_tokens"] <= 4096
    assert uncut["max_tokens"] == 2048


def test_the_vllm_offline_backend_caps_the_answer_so_prompt_and_answer_fit_the_context(tiny, settings, monkeypatch):
    from moderation.inference.backends import vllm_backend
    from tests.moderation.inference.test_qwen_vl import _Recorder

    recorder = _Recorder('{"label": "正向", "confidence": 0.5}')
    for name, module in recorder.modules().items():  # vllm itself runs on GPU nodes only
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(vllm_backend.VllmOfflineBackend, "_cache", {})
    settings.VLLM_SERVER_URL = ""
    settings.VLLM_MAX_MODEL_LEN = 4096
    settings.VLM_MAX_NEW_TOKENS = 4000

    long, short = vllm_backend.vllm_backend_for(tiny).decide_batch([_long_item(), _long_item(2)], _policy())

    [(messages, params, _lora)] = recorder.chats
    assert params.max_tokens == 2048 and long.prompt_cut_tokens > 0 and short.prompt_cut_tokens == 0
    assert max(_sent_tokens(tiny, m) for m in messages) + params.max_tokens <= 4096


def test_a_tag2cot_draft_under_a_rubric_too_long_for_the_model_shows_the_reason(
    tiny, policy_version, settings, client_as
):
    """The draft's failure was kept as "PromptTooLong: The policy's rubric is …"; it reads as written now."""
    from annotation.models import Tag2CotTask
    from annotation.tasks import draft_tag2cot
    from tests.factories import DecisionFactory

    settings.TRANSFORMERS_MAX_CONTEXT_TOKENS = 500  # the tiny model spends 540 on the rubric
    _serving(tiny, policy_version)
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    task = Tag2CotTask.objects.create(
        video=decision.video, decision=decision, policy_version=policy_version, target_label="引导私下交易"
    )

    draft_tag2cot(task.pk)

    task.refresh_from_db()
    assert RUBRIC_TOO_LONG.match(task.draft_error), task.draft_error
    page = client_as("labeler").get(reverse("annotation:tag2cot_write", args=[task.pk])).content.decode()
    assert "The model-assisted draft failed: The policy&#x27;s rubric is " in page


def test_a_shadow_candidate_that_cannot_decide_is_counted_with_the_reason_on_the_registry(
    tiny, policy_version, settings, client_as
):
    """A candidate in shadow refused for a rubric too long for it only failed its Celery task: the
    registry's shadow comparison showed nothing of it. Each item it could not decide is now recorded, counted
    and said with the reason, beside the agreement of what it did decide."""
    from moderation.inference.services import decision_create_for_video
    from training.models import ShadowDecision
    from training.release import shadow_agreement, shadow_start
    from training.tasks import run_shadow_decision

    settings.TRANSFORMERS_MAX_CONTEXT_TOKENS = 500  # the tiny model spends 540 on the rubric
    candidate = model_version_register(name="too-short-candidate", backend="transformers", base_model=tiny)
    shadow_start(model_version=candidate, by=None)
    decisions = [decision_create_for_video(video_id=VideoFactory(title=t).pk) for t in ("Noodles", "Tea")]

    for decision in decisions:
        assert run_shadow_decision(decision.pk) == 1  # the task ends normally: the failure is recorded
    assert run_shadow_decision(decisions[0].pk) == 0  # redelivered: not tried or counted twice

    failed = ShadowDecision.objects.filter(model_version=candidate)
    assert failed.count() == 2 and all(RUBRIC_TOO_LONG.match(s.error) and not s.label for s in failed)
    stats = shadow_agreement(model_version=candidate)
    assert stats["failed"] == 2 and stats["n"] == 0 and stats["rate"] is None
    assert RUBRIC_TOO_LONG.match(stats["last_error"])
    page = client_as("admin").get(reverse("training:model_list")).content.decode()
    row = page[page.index('data-version="too-short-candidate"') :].split("</tr>")[0]
    assert "2 items it could not decide; latest: The policy&#x27;s rubric is " in row
