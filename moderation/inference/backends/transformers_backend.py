"""VLM inference with Hugging Face transformers (CPU or GPU), batched ``generate``.

Loads an image-text-to-text model (e.g. LLaVA- or Qwen-VL-class) from a local folder or hub id,
or a text-only causal LM (such as a model fine-tuned by our training jobs), optionally with a
PEFT LoRA adapter on top. Models are loaded once per worker process and reused.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings

from moderation.inference.backends import BackendResult, ContentBundle, Generation, LoadedOnce, result_from_text
from moderation.inference.prompts import Prompt, policy_prompt
from moderation.policies.spec import PolicySpec

MAX_IMAGES = 8
IMAGE_MAX_SIDE = 448  # keyframes are downscaled before they reach the processor
# What replaces the middle of an item's content that does not fit the model's context.
CUT_NOTE = "\n[… {n} tokens of this item's content cut here to fit the model's context …]\n"
CUT_NOTE_TOKENS = 32  # room for the note itself


@dataclass
class _Fitted:
    """One prompt ready for the model: its text, images, length in tokens and what was cut from it."""

    text: str
    images: list[Any]
    n_tokens: int
    cut_tokens: int


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
        # What the model can read: its position limit (a VLM's language model's) and the tokenizer's own
        # limit when it names one; TRANSFORMERS_MAX_CONTEXT_TOKENS may cap it lower (read per call).
        text_config = getattr(config, "text_config", None) or config
        limits = [
            getattr(text_config, "max_position_embeddings", None),
            getattr(self.tokenizer, "model_max_length", None),
        ]
        self.model_context = min([int(n) for n in limits if isinstance(n, int) and 0 < n < 10**8] or [10**8])
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

        Each prompt is first fitted to the model's context (``_fit``); then prompts of similar length
        go through ``generate`` together, as many as ``TRANSFORMERS_BATCH_TOKENS`` allows, so a long
        item never pads a whole batch to its length.
        """
        if not self.multimodal:
            prompts = [Prompt(p.system, p.user, []) for p in prompts]
        else:
            prompts = [Prompt(p.system, p.user, p.image_paths[:MAX_IMAGES]) for p in prompts]
        context = min(self.model_context, settings.TRANSFORMERS_MAX_CONTEXT_TOKENS)
        max_new_tokens = min(max_new_tokens, context // 2)
        fitted = [self._fit(p, limit=context - max_new_tokens) for p in prompts]
        generations: list[Generation | None] = [None] * len(fitted)
        for group in token_batches(
            [f.n_tokens for f in fitted], budget=settings.TRANSFORMERS_BATCH_TOKENS, per_row=max_new_tokens
        ):
            for i, g in zip(group, self._generate([fitted[i] for i in group], max_new_tokens), strict=True):
                generations[i] = g
        return [g for g in generations if g is not None]

    def _generate(self, fitted: list[_Fitted], max_new_tokens: int) -> list[Generation]:
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

    def _fit(self, prompt: Prompt, *, limit: int) -> _Fitted:
        """The prompt as the model reads it, at most ``limit`` tokens (its context less the new tokens).

        A longer one keeps the rubric, the head and the tail of the item's content, and the images;
        the middle of the content is replaced by a note that says how many tokens were cut (the
        model is told, and the result records it). Counted as the model counts: after the chat
        template and, for a VLM, the processor's image-token expansion.
        """
        from PIL import Image

        images = [_load_image(path, Image) for path in prompt.image_paths] if self.multimodal else []
        text = self._prompt_text(prompt, prompt.user)
        n_tokens = self._count_tokens(text, images)
        if n_tokens <= limit:
            return _Fitted(text, images, n_tokens, 0)
        ids = self.tokenizer(prompt.user, add_special_tokens=False)["input_ids"]
        cut = n_tokens - limit
        for _attempt in range(4):  # re-tokenising at the seams can differ by a few tokens
            cut = min(cut + CUT_NOTE_TOKENS, len(ids))
            head = (len(ids) - cut + 1) // 2
            tail = len(ids) - cut - head
            user = (
                self.tokenizer.decode(ids[:head])
                + CUT_NOTE.format(n=cut)
                + (self.tokenizer.decode(ids[len(ids) - tail :]) if tail else "")
            )
            text = self._prompt_text(prompt, user)
            n_tokens = self._count_tokens(text, images)
            if n_tokens <= limit or cut == len(ids):
                break
            cut += n_tokens - limit
        return _Fitted(text, images, n_tokens, cut)

    def _prompt_text(self, prompt: Prompt, user: str) -> str:
        shown = Prompt(prompt.system, user, prompt.image_paths)
        return self._chat_text(shown.messages(with_images=self.multimodal), shown.as_text())

    def _count_tokens(self, text: str, images: list[Any]) -> int:
        if images:
            return int(self.processor(images=[images], text=[text], return_tensors="pt")["input_ids"].shape[1])
        return len(self.tokenizer(text)["input_ids"])

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
