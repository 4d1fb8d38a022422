"""Qwen2.5-VL on CPU with a tiny random model (tests/tiny_models.py) and no torchvision.

* the transformers backend sends the selected keyframes as images with the rubric prompt in Qwen's
  chat format, and parses the answer with the policy's CoT format (KuaiMod and BLM-Guard);
* the vLLM backend's requests (offline engine and OpenAI server) are checked against what the same
  model's processor expects: one image placeholder per image part, at most ``limit_mm_per_prompt``
  images, the images decodable and processable, guided JSON with the policy's schema, the LoRA
  adapter as a LoRA request. vLLM itself only runs on GPU nodes (scripts/gpu_check.sh runs it there);
  here its offline engine is replaced by a recorder and its server by a local HTTP endpoint.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from moderation.inference.backends import ContentBundle, Frame, PolicySpec, Segment
from moderation.inference.cot import json_schema
from moderation.policies.seed import SAFE_LABEL, blm_guard_taxonomy, kuaimod_taxonomy
from tests.vllm_stub import vllm_stub

VISION = "<|vision_start|><|image_pad|><|vision_end|>"


def _bundle(tmp_path: Path, n_frames: int = 2) -> ContentBundle:
    from PIL import Image

    paths = []
    for i in range(n_frames):
        path = tmp_path / f"kf{i}.jpg"
        Image.new("RGB", (64 + 40 * (i % 3), 48), (200, 30 + 20 * i, 30)).save(path)  # sizes differ
        paths.append(str(path))
    return ContentBundle(
        title="Cheap phones",
        description="",
        uploader="",
        segments=[Segment(3, 1.0, 2.0, "pay me by bank transfer")],
        frames=[Frame(10 + i, float(i), True) for i in range(n_frames)],
        ocr=["limited offer"],
        image_paths=paths,
    )


def _image_tokens(processor: Any, input_ids: Any) -> int:
    return int((input_ids == processor.image_token_id).sum())


@pytest.mark.parametrize(
    ("fmt", "taxonomy", "instruction", "parse_error"),
    [
        ("kuaimod", kuaimod_taxonomy(), "Answer in five stages", "expected the five stages"),
        ("blm", blm_guard_taxonomy(), "<answer>", "<think>"),
    ],
)
def test_transformers_backend_sends_keyframes_as_images_with_the_rubric(
    tiny_qwen_vl, tmp_path, settings, fmt, taxonomy, instruction, parse_error
):
    from moderation.inference.backends.transformers_backend import TransformersBackend

    settings.VLM_MAX_NEW_TOKENS = 4
    backend = TransformersBackend(tiny_qwen_vl)
    assert backend.multimodal and type(backend.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    seen: dict[str, Any] = {}
    generate = backend.model.generate

    def recording_generate(**inputs: Any) -> Any:
        seen.update(inputs)
        return generate(**inputs)

    backend.model.generate = recording_generate
    bundles = [_bundle(tmp_path, 2), _bundle(tmp_path / "..", 1)]
    results = backend.decide_batch(bundles, PolicySpec(taxonomy, SAFE_LABEL, output_format=fmt))

    grid = seen["image_grid_thw"]
    assert grid.shape == (3, 3)  # three keyframes, each (t, h, w) in 14 px patches
    assert seen["pixel_values"].shape[0] == int(grid.prod(dim=1).sum())
    # Each <|image_pad|> was expanded into one token per 2×2 merged patches of its image.
    merge = backend.processor.image_processor.merge_size**2
    assert _image_tokens(backend.processor, seen["input_ids"][0]) == int(grid[:2].prod(dim=1).sum()) // merge
    assert _image_tokens(backend.processor, seen["input_ids"][1]) == int(grid[2].prod()) // merge
    prompt = backend.tokenizer.decode(seen["input_ids"][0], skip_special_tokens=False)
    assert prompt.count("<|vision_start|>") == 2 and "<|im_start|>system\nYou are a content moderator" in prompt
    assert instruction in prompt and "pay me by bank transfer" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")  # left-padded: every row ends at the answer
    for result in results:  # a random model's answer: kept raw, with the format's parse error
        assert result.label == "" and parse_error in result.parse_error and result.completion_tokens <= 4


@dataclass
class _Recorder:
    """Stands in for vllm (GPU only): records what the backend asks of it and answers with ``answer``."""

    answer: str
    llm_kwargs: dict[str, Any] = field(default_factory=dict)
    chats: list[tuple[Any, ...]] = field(default_factory=list)

    def modules(self) -> dict[str, types.ModuleType]:
        recorder = self

        class LLM:
            def __init__(self, **kwargs: Any) -> None:
                recorder.llm_kwargs = kwargs

            def chat(self, messages: Any, params: Any, use_tqdm: bool, lora_request: Any) -> list[Any]:
                recorder.chats.append((messages, params, lora_request))
                out = types.SimpleNamespace(text=recorder.answer, token_ids=[1, 2, 3])
                return [types.SimpleNamespace(outputs=[out], prompt_token_ids=[0] * 10) for _ in messages]

        def kwargs_holder(**kwargs: Any) -> types.SimpleNamespace:
            return types.SimpleNamespace(**kwargs)

        def lora_request(name: str, lora_id: int, path: str) -> types.SimpleNamespace:
            return types.SimpleNamespace(lora_name=name, lora_int_id=lora_id, lora_path=path)

        vllm = types.ModuleType("vllm")
        vllm.LLM = LLM  # type: ignore[attr-defined]
        vllm.SamplingParams = kwargs_holder  # type: ignore[attr-defined]
        sampling = types.ModuleType("vllm.sampling_params")
        sampling.StructuredOutputsParams = kwargs_holder  # type: ignore[attr-defined]
        lora = types.ModuleType("vllm.lora")
        lora_req = types.ModuleType("vllm.lora.request")
        lora_req.LoRARequest = lora_request  # type: ignore[attr-defined]
        return {"vllm": vllm, "vllm.sampling_params": sampling, "vllm.lora": lora, "vllm.lora.request": lora_req}


def _check_against_processor(processor: Any, messages: list[dict[str, Any]]) -> int:
    """The messages through the model's own chat template and processor, as vLLM applies them."""
    from PIL import Image

    user = messages[1]["content"]
    urls = [part["image_url"]["url"] for part in user if part["type"] == "image_url"]
    images = [Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB") for url in urls]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.count(VISION) == len(images)
    assert text.index(VISION) > text.index("<|im_start|>user")  # images open the user turn, before the text
    inputs = processor(images=images, text=[text], return_tensors="pt")
    assert inputs["image_grid_thw"].shape[0] == len(images)
    merge = processor.image_processor.merge_size**2
    assert _image_tokens(processor, inputs["input_ids"]) == int(inputs["image_grid_thw"].prod(dim=1).sum()) // merge
    return len(images)


def test_vllm_offline_request_matches_the_processor(tiny_qwen_vl, tmp_path, monkeypatch, settings):
    from moderation.inference.backends import vllm_backend
    from moderation.inference.backends.vlm_processor import load_processor

    answer = {
        "content_extraction": "phones [frame:10]",
        "analysis": "asks for a bank transfer [t=1.0s]",
        "intermediate_check": "consistent",
        "user_feedback": "none",
        "label": "引导私下交易",
        "confidence": 0.8,
    }
    recorder = _Recorder(json.dumps(answer, ensure_ascii=False))
    for name, module in recorder.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    settings.VLLM_SERVER_URL = ""
    adapter = tmp_path / "adapter"
    monkeypatch.setattr(vllm_backend.VllmOfflineBackend, "_cache", {})
    backend = vllm_backend.vllm_backend_for(tiny_qwen_vl, str(adapter))
    policy = PolicySpec(kuaimod_taxonomy(), SAFE_LABEL)

    results = backend.decide_batch([_bundle(tmp_path, 10), _bundle(tmp_path / "..", 1)], policy)

    assert recorder.llm_kwargs["model"] == tiny_qwen_vl and recorder.llm_kwargs["enable_lora"] is True
    limit = recorder.llm_kwargs["limit_mm_per_prompt"]["image"]
    [(messages, params, lora)] = recorder.chats
    processor = load_processor(tiny_qwen_vl)
    counts = [_check_against_processor(processor, m) for m in messages]
    assert counts == [limit, 1]  # ten keyframes: only as many as the engine accepts per prompt
    assert params.temperature == 0 and params.max_tokens == settings.VLM_MAX_NEW_TOKENS
    assert params.structured_outputs.json == json_schema("kuaimod", policy.labels(), policy.scenes())
    assert (lora.lora_name, lora.lora_int_id, lora.lora_path) == ("adapter", 1, str(adapter))
    assert [r.label for r in results] == ["引导私下交易"] * 2 and not results[0].parse_error
    assert results[0].cot[0]["evidence"] == [{"kind": "frame", "ref": 10, "label": "frame 10"}]


def test_vllm_server_request_matches_the_processor(tiny_qwen_vl, tmp_path, settings):
    from moderation.inference.backends.vllm_backend import VllmServerBackend
    from moderation.inference.backends.vlm_processor import load_processor

    answer = {
        "visual_location": "a phone on a table [frame:10]",
        "risk_screening": "a bank transfer request [t=1.0s]",
        "causal_analysis": "steers buyers off the platform",
        "scene": "诱导交易",
        "violation_type": "私下交易",
        "severity": "high",
    }

    with vllm_stub(json.dumps(answer, ensure_ascii=False)) as stub:
        backend = VllmServerBackend(stub.url, tiny_qwen_vl, str(tmp_path / "sft-7"))
        policy = PolicySpec(blm_guard_taxonomy(), SAFE_LABEL, output_format="blm")
        [result] = backend.decide_batch([_bundle(tmp_path, 3)], policy)
    seen = stub.bodies

    [body] = seen
    assert body["model"] == "sft-7"  # the adapter, served as `--lora-modules sft-7=…`
    assert body["response_format"]["json_schema"]["schema"] == json_schema("blm", policy.labels(), policy.scenes())
    assert _check_against_processor(load_processor(tiny_qwen_vl), body["messages"]) == 3
    assert result.label == "私下交易" and result.scene == "诱导交易" and not result.parse_error, result.parse_error
