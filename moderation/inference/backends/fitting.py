"""Fitting a prompt to a model's context: one rule for every local-model backend (transformers, vLLM).

A prompt longer than what the model reads keeps the policy's rubric, the head and the tail of the item's
content, and its images; the middle of the content is replaced by a note saying how many tokens were cut
(the model is told, and the result records it). Tokens are counted as the model counts them: after the
chat template and, for a VLM, the processor's image-token expansion. A rubric that leaves no room for
any item is refused with ``PromptTooLong`` (a readable ModerationError), never sent.

The counting needs the model's own tokenizer (or processor): the transformers backend passes the ones it
loaded; vLLM reads the Hugging Face tokenizer of the same model (``PromptFitter.load``).
Worker-side only: transformers and PIL are imported inside the functions.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from moderation.errors import ModerationError
from moderation.inference.prompts import Prompt

# What replaces the middle of an item's content that does not fit the model's context.
logger = logging.getLogger(__name__)

CUT_NOTE = "\n[… {n} tokens of this item's content cut here to fit the model's context …]\n"
CUT_NOTE_TOKENS = 32  # room for the note itself
NO_LIMIT = 10**8


class PromptTooLong(ModerationError):
    """The policy's rubric alone (with the images) does not fit the model's context: no item can be decided."""


@dataclass
class FittedPrompt:
    """One prompt as the model will read it: the prompt with its content cut (``prompt``), the text after the
    chat template, the images loaded, its length in tokens and how many tokens of the content were cut."""

    prompt: Prompt
    text: str
    n_tokens: int
    cut_tokens: int
    images: list[Any] = field(default_factory=list)
    max_new_tokens: int = 0  # the answer's length as capped for this context (answer_tokens)


def answer_tokens(*, context: int, max_new_tokens: int) -> int:
    """The longest answer asked of a model reading ``context`` tokens: ``max_new_tokens``, but never more
    than half the context, so the prompt keeps the other half and prompt plus answer never exceed it."""
    return min(max_new_tokens, context // 2)


def model_context_of(config: Any, tokenizer: Any) -> int:
    """What the model can read: its position limit (a VLM's language model's) and the tokenizer's own
    limit when it names one (NO_LIMIT when neither says)."""
    text_config = getattr(config, "text_config", None) or config
    limits = [getattr(text_config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    return min([int(n) for n in limits if isinstance(n, int) and 0 < n < NO_LIMIT] or [NO_LIMIT])


class PromptFitter:
    """Counts and cuts prompts for one model (``model``: its name in messages)."""

    _cache: ClassVar[dict[str, PromptFitter]] = {}
    _missing: ClassVar[set[str]] = set()
    _lock = threading.Lock()

    def __init__(
        self,
        *,
        model: str,
        tokenizer: Any,
        processor: Any = None,
        multimodal: bool = False,
        model_context: int = NO_LIMIT,
        image_max_side: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
        self.multimodal = multimodal
        self.model_context = model_context
        self.image_max_side = image_max_side  # the backend's own downscale before the processor; None: as sent

    @classmethod
    def load(cls, base_model: str) -> PromptFitter:
        """The fitter of ``base_model`` from its Hugging Face config and tokenizer (a VLM's processor), as
        found on this node (never downloaded here), loaded once per process: what vLLM tokenizes with, for
        a backend that holds no tokenizer of its own."""
        with cls._lock:
            if base_model not in cls._cache:
                cls._cache[base_model] = cls._load(base_model)
            return cls._cache[base_model]

    @classmethod
    def load_or_none(cls, base_model: str) -> PromptFitter | None:
        """``load``, or None (logged once) when this node has no copy of the model's tokenizer: a vLLM server's
        client may run where the model is not (the server then refuses an over-long prompt itself)."""
        if base_model in cls._missing:
            return None
        try:
            return cls.load(base_model)
        except (ImportError, OSError, ValueError) as exc:
            logger.warning("no tokenizer of %s on this node, prompts are sent uncut: %s", base_model, exc)
            cls._missing.add(base_model)
            return None

    @classmethod
    def _load(cls, base_model: str) -> PromptFitter:
        from transformers import AutoConfig, AutoTokenizer

        config = AutoConfig.from_pretrained(base_model, local_files_only=True)
        multimodal = hasattr(config, "vision_config")
        processor = None
        if multimodal:
            from moderation.inference.backends.vlm_processor import load_processor

            processor = load_processor(base_model)
            tokenizer = processor.tokenizer
        else:
            tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
        return cls(
            model=base_model,
            tokenizer=tokenizer,
            processor=processor,
            multimodal=multimodal,
            model_context=model_context_of(config, tokenizer),
        )

    def fit(self, prompt: Prompt, *, context: int, max_new_tokens: int) -> FittedPrompt:
        """``prompt`` cut to at most ``context`` less its answer's tokens (``context`` is capped at the model's
        own; the answer at ``max_new_tokens`` and at half the context: ``answer_tokens``, returned as the
        result's ``max_new_tokens``). Raises ``PromptTooLong`` when the rubric leaves no room for the item's
        content."""
        context = min(context, self.model_context)
        max_new_tokens = answer_tokens(context=context, max_new_tokens=max_new_tokens)
        limit = context - max_new_tokens
        images = self._images(prompt.image_paths) if self.multimodal else []
        text = self.text(prompt, prompt.user)
        n_tokens = self.count(text, images)
        if n_tokens <= limit:
            return FittedPrompt(prompt, text, n_tokens, 0, images, max_new_tokens)
        ids = self.tokenizer(prompt.user, add_special_tokens=False)["input_ids"]
        cut = n_tokens - limit
        user = prompt.user
        for _attempt in range(4):  # re-tokenising at the seams can differ by a few tokens
            cut = min(cut + CUT_NOTE_TOKENS, len(ids))
            head = (len(ids) - cut + 1) // 2
            tail = len(ids) - cut - head
            user = (
                self.tokenizer.decode(ids[:head])
                + CUT_NOTE.format(n=cut)
                + (self.tokenizer.decode(ids[len(ids) - tail :]) if tail else "")
            )
            text = self.text(prompt, user)
            n_tokens = self.count(text, images)
            if n_tokens <= limit or cut == len(ids):
                break
            cut += n_tokens - limit
        if n_tokens > limit:
            rubric = self.count(self.text(prompt, ""), images)
            raise PromptTooLong(
                f"The policy's rubric is {rubric:,} tokens; model {self.model} reads {context:,} "
                f"({limit:,} once {max_new_tokens:,} are kept for its answer), so no item's content fits beside "
                "it. Shorten the policy version's rubric (fewer labels, keywords or criteria) or use a model "
                "that reads a longer context."
            )
        return FittedPrompt(
            Prompt(prompt.system, user, prompt.image_paths), text, n_tokens, cut, images, max_new_tokens
        )

    def text(self, prompt: Prompt, user: str) -> str:
        """The prompt with ``user`` as its content, after the model's chat template."""
        shown = Prompt(prompt.system, user, prompt.image_paths)
        messages = shown.messages(with_images=self.multimodal)
        template_owner = self.processor if self.processor is not None else self.tokenizer
        if not self.multimodal:
            # Text-only chat templates take string content; the SFT and DPO jobs train on the same
            # joined text (training.data.flatten_messages), so served and trained prompts match.
            messages = [{**m, "content": _joined_text(m["content"])} for m in messages]
        if getattr(template_owner, "chat_template", None):
            return str(template_owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        return shown.as_text() + "\n"

    def count(self, text: str, images: list[Any]) -> int:
        if images:
            return int(self.processor(images=[images], text=[text], return_tensors="pt")["input_ids"].shape[1])
        return len(self.tokenizer(text)["input_ids"])

    def _images(self, paths: list[str]) -> list[Any]:
        from PIL import Image

        loaded = []
        for path in paths:
            img = Image.open(path).convert("RGB")
            if self.image_max_side:
                img.thumbnail((self.image_max_side, self.image_max_side))
            loaded.append(img)
        return loaded


def _joined_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content if part.get("type") == "text")
