"""SFT, DPO and GRPO jobs on tiny random VLMs built by the tests: Qwen2.5-VL (the production architecture;
PIL image processor, no torchvision) and LLaVA (tiny CLIP vision tower + tiny Llama).

Reviewed decisions whose videos carry selected keyframe JPEGs become SFT and DPO snapshots with an
``images`` column; the jobs train LoRA adapters on the VLM with those images, and the promoted adapter
then makes a new decision through the transformers backend.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import CotCorrection
from moderation.inference.services import (
    decision_create_for_video,
    model_version_promote,
    model_version_register,
    model_version_serving,
)
from moderation.labels.models import ItemLabel
from moderation.media.models import Keyframe, Video
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory, ReviewTaskFactory, VideoFactory
from training.errors import TrainingError
from training.evaluation import evaluation_execute, evaluation_start
from training.models import TrainingJob
from training.release import model_version_promote_gated, promotion_check
from training.services import preference_dataset_build, sft_dataset_build, training_job_start
from training.tasks import run_training_job

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


ARCHITECTURES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "llava": "LlavaForConditionalGeneration"}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def tiny_vlm(request):  # type: ignore[no-untyped-def]
    """The production architecture (Qwen2.5-VL) and LLaVA, each the session's one (shared with the other tests)."""
    return request.getfixturevalue("tiny_qwen_vl" if request.param == "qwen2_5_vl" else "tiny_llava")


def _keyframes(video: Video, colors: list[tuple[int, int, int]]) -> None:
    from PIL import Image

    for index, color in enumerate(colors):
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), color).save(buf, format="JPEG")
        Keyframe.objects.create(
            video=video,
            index=index,
            timestamp=float(index),
            image=SimpleUploadedFile(f"kf{video.pk}-{index}.jpg", buf.getvalue(), content_type="image/jpeg"),
            selected=True,
            width=32,
            height=32,
        )
    # An unselected frame never reaches the model.
    Keyframe.objects.create(video=video, index=len(colors), timestamp=9.0, image="keyframes/unused.jpg")


def _evaluate(version):  # type: ignore[no-untyped-def]
    run = evaluation_execute(run_id=evaluation_start(model_version=version, created_by=None).pk)
    assert run is not None and run.status == "succeeded", run and run.error
    return run


def _run(job: TrainingJob) -> TrainingJob:
    run_training_job(job.pk)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SUCCEEDED, job.error + job.log_tail
    return job


def test_sft_dpo_grpo_train_lora_adapters_on_a_tiny_vlm_with_keyframes(
    tiny_vlm, training_dirs, policy_version, make_user, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VLM_MAX_NEW_TOKENS = 8
    admin = make_user("admin")
    overridden = DecisionFactory(policy_version=policy_version, video__title="Add me on WeChat")
    ReviewFactory(task=ReviewTaskFactory(decision=overridden), decision=overridden)
    corrected = DecisionFactory(policy_version=policy_version, video__title="Miracle tea")
    CotCorrectionFactory(decision=corrected, status=CotCorrection.Status.ACCEPTED, reviewed_by=admin)
    _keyframes(overridden.video, [(200, 30, 30), (30, 200, 30)])
    _keyframes(corrected.video, [(30, 30, 200)])

    sft = sft_dataset_build(created_by=admin)
    dpo = preference_dataset_build(created_by=admin)
    sft_rows = [json.loads(line) for line in Path(sft.jsonl_path).read_text().splitlines()]
    dpo_rows = [json.loads(line) for line in Path(dpo.jsonl_path).read_text().splitlines()]
    assert [len(r["images"]) for r in sft_rows] == [1]  # the accepted correction
    assert sorted(len(r["images"]) for r in dpo_rows) == [1, 2]
    assert all(Path(p).is_file() and p.endswith(".jpg") for r in dpo_rows for p in r["images"])

    small = {"max_steps": 2, "save_steps": 1, "max_length": 4096}
    jobs = [
        _run(training_job_start(dataset=sft, created_by=admin, base_model=tiny_vlm, params=small)),
        _run(training_job_start(dataset=dpo, created_by=admin, base_model=tiny_vlm, params=small)),
        _run(
            training_job_start(
                dataset=dpo,
                created_by=admin,
                kind="grpo",
                base_model=tiny_vlm,
                params={**small, "num_generations": 2, "batch_size": 2, "max_completion_length": 8},
            )
        ),
    ]
    assert all("reward" in h for h in jobs[2].history)
    for job in jobs:
        adapter = Path(job.output_dir) / "adapter"
        assert job.step == 2 and job.model_version.metrics["steps"] == 2
        config = json.loads((adapter / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == tiny_vlm
        assert (adapter / "processor_config.json").exists()  # the processor travels with the adapter
        assert job.model_version.adapter_path == str(adapter) and job.model_version.base_model == tiny_vlm
        # The default LoRA targets (q_proj, v_proj) are the language model's attention, in either architecture
        # (Qwen2.5-VL's vision blocks name theirs qkv/proj and stay frozen).
        from safetensors import safe_open

        with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as weights:
            keys = list(weights.keys())
        assert keys and all(("q_proj" in k or "v_proj" in k) and "visual" not in k for k in keys), keys[:4]
        assert any("language_model" in k for k in keys), keys[:4]

    # Evaluation and the release gate on the VLM adapters (gold set = the two reviewed items).
    for decision, label in ((overridden, "引导私下交易"), (corrected, "夸大商品功效")):
        ItemLabel.objects.create(video=decision.video, label=label, source="review", policy_version=policy_version)
    baseline = model_version_serving()
    base_run, dpo_run = _evaluate(baseline), _evaluate(jobs[1].model_version)
    assert base_run.metrics["format_validity"] == 1.0 and dpo_run.metrics["format_validity"] == 0.0
    with pytest.raises(TrainingError, match=r"Format validity \(outputs that parse\) would drop"):
        model_version_promote_gated(candidate=jobs[1].model_version, by=admin)
    assert model_version_serving() == baseline
    # Arranged as in test_end_to_end: the untuned VLM serves; an adapter that is no better is refused.
    base_vlm = model_version_register(name="tiny-vlm-base", backend="transformers", base_model=tiny_vlm)
    model_version_promote(model_version=base_vlm)
    _evaluate(base_vlm)
    _evaluate(jobs[1].model_version)
    assert "not better" in promotion_check(candidate=jobs[1].model_version).reasons[-1]

    dpo_version = jobs[1].model_version
    model_version_promote(model_version=dpo_version)  # moderation's ungated switch
    fresh = VideoFactory(title="A brand new upload")
    _keyframes(fresh, [(120, 120, 10)])
    decision = decision_create_for_video(video_id=fresh.pk)

    assert decision.model_version == dpo_version and decision.backend == "transformers"
    from moderation.inference.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend._cache[(tiny_vlm, dpo_version.adapter_path)]
    assert type(backend.model).__name__ == "PeftModelForCausalLM"
    from transformers import AutoConfig

    base_class = type(backend.model.get_base_model()).__name__
    assert base_class == ARCHITECTURES[AutoConfig.from_pretrained(tiny_vlm).model_type], base_class
    assert decision.parse_error  # 2 steps on a random model write no parseable CoT; that is recorded, not raised


def test_images_truncated_away_by_max_length_fail_the_job_readably(
    tiny_vlm, training_dirs, policy_version, make_user, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    admin = make_user("admin")
    corrected = DecisionFactory(policy_version=policy_version, video__title="Miracle tea")
    CotCorrectionFactory(decision=corrected, status=CotCorrection.Status.ACCEPTED, reviewed_by=admin)
    _keyframes(corrected.video, [(30, 30, 200)])
    sft = sft_dataset_build(created_by=admin)

    job = training_job_start(dataset=sft, created_by=admin, base_model=tiny_vlm, params={"max_length": 256})
    run_training_job(job.pk)

    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED
    assert "past max_length=256" in job.error and "Raise max_length" in job.error
