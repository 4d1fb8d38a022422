"""VLM inference with Hugging Face transformers (CPU or GPU), batched ``generate``.

Loads an image-text-to-text model (e.g. LLaVA- or Qwen-VL-class) from a local folder or hub id,
or a text-only causal LM (such as a model fine-tuned by our training jobs), optionally with a
PEFT LoRA adapter on top. Models are loaded once per worker process and reused.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from django.conf import settings

from moderation.inference.backends import BackendResult, ContentBundle, Generation, LoadedOnce, result_from_text
from moderation.inference.prompts import Prompt, policy_prompt
from moderation.policies.spec import PolicySpec

MAX_IMAGES = 8
IMAGE_MAX_SIDE = 448  # keyframes are downscaled before they reach the processor


class TransformersBackend(LoadedOnce):
    name = "transformers"
    _cache: ClassVar[dict[tuple[str, str], TransformersBackend]] = {}
    _lock = threading.Lock()

    def __init__(self, base_model: str, adapter_path: str = "") -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

        from moderation.inference.backends.vlm_processor import load_processor

        self.base_model = base_model
        self.adapter_path = adapter_path
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        config = AutoConfig.from_pretrained(base_model)
        self.multimodal = hasattr(config, "vision_config")
        # A transformers model, or a PEFT wrapper around one. Typed Any on purpose: transformers'
        # own annotations of ``to`` (functools.wraps on a method) and ``generate`` (a self-type)
        # do not type-check when called on the instance.
        self.model: Any
        if self.multimodal:
            self.model = AutoModelForImageTextToText.from_pretrained(base_model, dtype=dtype)
            self.processor = load_processor(base_model)
            self.tokenizer = self.processor.tokenizer
        else:
            from transformers import AutoTokenizer

            self.model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
            self.tokenizer = AutoTokenizer.from_pretrained(base_model)
            self.processor = None
        if adapter_path:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, adapter_path)
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"  # batched generation continues every row from its end
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def decide_batch(self, contents: list[ContentBundle], policy: PolicySpec) -> list[BackendResult]:
        prompts = [
            policy_prompt(c, policy, image_paths=c.image_paths[:MAX_IMAGES] if self.multimodal else [])
            for c in contents
        ]
        results = []
        for g in self.generate_texts(prompts, max_new_tokens=settings.VLM_MAX_NEW_TOKENS):
            results.append(result_from_text(g.text, policy, g.prompt_tokens, g.completion_tokens))
            results[-1].latency_ms = g.latency_ms
        return results

    def generate_texts(
        self, prompts: list[Prompt], *, max_new_tokens: int, json_schema: dict[str, Any] | None = None
    ) -> list[Generation]:
        """Greedy generations for ``prompts`` in one batch (images only for a multimodal model, at
        most ``MAX_IMAGES`` each). ``json_schema`` is ignored: transformers has no guided decoding
        here, the caller's parser checks the answer."""
        import torch
        from PIL import Image

        if not self.multimodal:
            prompts = [Prompt(p.system, p.user, []) for p in prompts]
        else:
            prompts = [Prompt(p.system, p.user, p.image_paths[:MAX_IMAGES]) for p in prompts]
        texts = [self._chat_text(p.messages(with_images=self.multimodal), p.as_text()) for p in prompts]
        started = time.perf_counter()
        if self.multimodal and any(p.image_paths for p in prompts):
            images = [[_load_image(path, Image) for path in p.image_paths] for p in prompts]
            inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        elif self.processor is not None:
            inputs = self.processor(text=texts, return_tensors="pt", padding=True)
        else:
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True)
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = out[:, prompt_len:]
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [
            Generation(
                text=text,
                prompt_tokens=int(inputs["attention_mask"][i].sum()),
                completion_tokens=int((new_tokens[i] != self.tokenizer.pad_token_id).sum()),
                latency_ms=elapsed_ms / len(decoded),
            )
            for i, text in enumerate(decoded)
        ]

    def _chat_text(self, messages: list[dict[str, Any]], fallback: str) -> str:
        template_owner = self.processor if self.processor is not None else self.tokenizer
        if not self.multimodal:
            # Text-only chat templates take string content; the SFT and DPO jobs train on the same
            # joined text (training.data.flatten_messages), so served and trained prompts match.
            messages = [{**m, "content": _joined_text(m["content"])} for m in messages]
        if getattr(template_owner, "chat_template", None):
            return template_owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return fallback + "\n"


def _joined_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content if part.get("type") == "text")


def _load_image(path: str, image_module: Any) -> Any:
    img = image_module.open(path).convert("RGB")
    img.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
    return img
