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
from moderation.inference.backends.fitting import FittedPrompt, PromptFitter, answer_tokens, model_context_of
from moderation.inference.prompts import Prompt, policy_prompt
from moderation.policies.spec import PolicySpec

MAX_IMAGES = 8
IMAGE_MAX_SIDE = 448  # keyframes are downscaled before they reach the processor


def token_batches(lengths: list[int], *, budget: int, per_row: int = 0) -> list[list[int]]:
    """Indices of ``lengths`` in groups for one ``generate`` call each: similar lengths together, and
    rows x (longest prompt of the group + ``per_row``) at most ``budget`` (one row always goes). Within a
    group the indices keep their order."""
    groups: list[list[int]] = []
    group: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if group and (len(group) + 1) * (lengths[i] + per_row) > budget:
            groups.append(sorted(group))
            group = []
        group.append(i)
    if group:
        groups.append(sorted(group))
    return groups


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
        # What the model can read (fitting.model_context_of); TRANSFORMERS_MAX_CONTEXT_TOKENS may cap it
        # lower (read per call). The fitter cuts prompts to it, as the vLLM backend's does.
        self.model_context = model_context_of(config, self.tokenizer)
        self.fitter = PromptFitter(
            model=base_model,
            tokenizer=self.tokenizer,
            processor=self.processor,
            multimodal=self.multimodal,
            model_context=self.model_context,
            image_max_side=IMAGE_MAX_SIDE,
        )
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
            results[-1].prompt_cut_tokens = g.prompt_cut_tokens
        return results

    def generate_texts(
        self, prompts: list[Prompt], *, max_new_tokens: int, json_schema: dict[str, Any] | None = None
    ) -> list[Generation]:
        """Greedy generations for ``prompts``, in their order (images only for a multimodal model, at
        most ``MAX_IMAGES`` each). ``json_schema`` is ignored: transformers has no guided decoding
        here, the caller's parser checks the answer.

        Each prompt is first fitted to the model's context (``PromptFitter.fit``: a rubric too long for it
        raises ``PromptTooLong``); then prompts of similar length
        go through ``generate`` together, as many as ``TRANSFORMERS_BATCH_TOKENS`` allows, so a long
        item never pads a whole batch to its length.
        """
        if not self.multimodal:
            prompts = [Prompt(p.system, p.user, []) for p in prompts]
        else:
            prompts = [Prompt(p.system, p.user, p.image_paths[:MAX_IMAGES]) for p in prompts]
        context = min(self.model_context, settings.TRANSFORMERS_MAX_CONTEXT_TOKENS)
        max_new_tokens = answer_tokens(context=context, max_new_tokens=max_new_tokens)  # as fit caps it
        fitted = [self.fitter.fit(p, context=context, max_new_tokens=max_new_tokens) for p in prompts]
        generations: list[Generation | None] = [None] * len(fitted)
        for group in token_batches(
            [f.n_tokens for f in fitted], budget=settings.TRANSFORMERS_BATCH_TOKENS, per_row=max_new_tokens
        ):
            for i, g in zip(group, self._generate([fitted[i] for i in group], max_new_tokens), strict=True):
                generations[i] = g
        return [g for g in generations if g is not None]

    def _generate(self, fitted: list[FittedPrompt], max_new_tokens: int) -> list[Generation]:
        import torch

        texts = [f.text for f in fitted]
        started = time.perf_counter()
        if any(f.images for f in fitted):
            inputs = self.processor(images=[f.images for f in fitted], text=texts, return_tensors="pt", padding=True)
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
                prompt_cut_tokens=fitted[i].cut_tokens,
            )
            for i, text in enumerate(decoded)
        ]


def _load_image(path: str, image_module: Any) -> Any:
    """A keyframe as this backend shows it (downscaled to IMAGE_MAX_SIDE); the pair teacher loads its images so."""
    img = image_module.open(path).convert("RGB")
    img.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
    return img
