"""vLLM backend, two ways to reach the same engine:

* in-process offline engine (``vllm.LLM``) inside a GPU worker (pool solo, loaded once), with
  prefix caching on (the policy rubric is a shared prefix) and LoRA adapters per request;
* an OpenAI-compatible server (``vllm serve … --enable-prefix-caching``) at ``VLLM_SERVER_URL``.

Both use guided decoding with the CoT's JSON schema (moderation.inference.cot.json_schema) and
convert the answer into the canonical text format before parsing, so results look exactly like
the transformers backend's. vllm is only importable on GPU nodes (requirements/gpu.txt).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, ClassVar

from django.conf import settings

from moderation.inference.backends import (
    BackendResult,
    ContentBundle,
    Generation,
    LoadedOnce,
    result_from_text,
    unparsed_result,
)
from moderation.inference.backends.fitting import FittedPrompt, PromptFitter, answer_tokens
from moderation.inference.cot import CotParseError, json_schema, text_from_json
from moderation.inference.prompts import Prompt, policy_prompt
from moderation.policies.spec import PolicySpec

MAX_IMAGES = 8


def vllm_backend_for(base_model: str, adapter_path: str = "") -> Any:
    if settings.VLLM_SERVER_URL:
        return VllmServerBackend(settings.VLLM_SERVER_URL, base_model, adapter_path)
    return VllmOfflineBackend.cached(base_model, adapter_path)


def _openai_messages(prompt: Prompt) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    for path in prompt.image_paths[:MAX_IMAGES]:
        with open(path, "rb") as fh:
            data = base64.b64encode(fh.read()).decode()
        content.append({"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}})
    content.append({"type": "text", "text": prompt.user})
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]


def _fitted(fitter: PromptFitter | None, prompt: Prompt, max_new_tokens: int) -> FittedPrompt:
    """``prompt`` (at most MAX_IMAGES images) cut to VLLM_MAX_MODEL_LEN, and its answer capped, by the rule
    the transformers backend follows (fitting.PromptFitter; a rubric too long for the model raises
    PromptTooLong): send ``max_new_tokens`` of the result, so prompt plus answer fit the engine's context.
    Without a tokenizer on this node (a server's client) the prompt goes as it is, its answer still capped."""
    prompt = Prompt(prompt.system, prompt.user, prompt.image_paths[:MAX_IMAGES])
    if fitter is None:
        capped = answer_tokens(context=settings.VLLM_MAX_MODEL_LEN, max_new_tokens=max_new_tokens)
        return FittedPrompt(prompt, "", 0, 0, max_new_tokens=capped)
    return fitter.fit(prompt, context=settings.VLLM_MAX_MODEL_LEN, max_new_tokens=max_new_tokens)


def _result(g: Generation, policy: PolicySpec) -> BackendResult:
    try:
        text = text_from_json(g.text, policy.output_format)
    except CotParseError as exc:
        result = unparsed_result(g.text, exc, g.prompt_tokens, g.completion_tokens)
    else:
        result = result_from_text(text, policy, g.prompt_tokens, g.completion_tokens)
    result.latency_ms = g.latency_ms
    result.prompt_cut_tokens = g.prompt_cut_tokens
    return result


class VllmServerBackend:
    """Talks to a vLLM OpenAI-compatible server (`/v1/chat/completions`)."""

    name = "vllm"

    def __init__(self, url: str, base_model: str, adapter_path: str = "", timeout: float = 300.0) -> None:
        self.url = url.rstrip("/") + "/v1/chat/completions"
        # A LoRA adapter is served under its own model name (`--lora-modules name=path`).
        self.model = adapter_path.rstrip("/").rsplit("/", 1)[-1] if adapter_path else base_model
        self.timeout = timeout
        self.fitter = PromptFitter.load_or_none(base_model)  # the server's tokenizer, when this node has it

    def decide_batch(self, contents: list[ContentBundle], policy: PolicySpec) -> list[BackendResult]:
        return [self._one(c, policy) for c in contents]

    def _one(self, content: ContentBundle, policy: PolicySpec) -> BackendResult:
        prompt = policy_prompt(content, policy, image_paths=content.image_paths)
        schema = json_schema(policy.output_format, policy.labels(), policy.scenes())
        return _result(self._generate(prompt, settings.VLM_MAX_NEW_TOKENS, schema, "moderation_cot"), policy)

    def generate_texts(
        self, prompts: list[Prompt], *, max_new_tokens: int, json_schema: dict[str, Any] | None = None
    ) -> list[Generation]:
        """Free-text answers to the caller's prompts (guided by ``json_schema`` when given)."""
        return [self._generate(p, max_new_tokens, json_schema, "answer") for p in prompts]

    def _generate(
        self, prompt: Prompt, max_new_tokens: int, schema: dict[str, Any] | None, schema_name: str
    ) -> Generation:
        fitted = _fitted(self.fitter, prompt, max_new_tokens)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _openai_messages(fitted.prompt),
            "temperature": 0,
            "max_tokens": fitted.max_new_tokens,
        }
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema}}
        request = urllib.request.Request(  # noqa: S310 (the operator-configured server URL)
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310 (configured URL)
                payload = json.loads(resp.read())
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"vLLM server at {self.url} failed: {exc}") from exc
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            raw = payload["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise RuntimeError(f"vLLM server at {self.url} answered without a message: {str(payload)[:200]}") from exc
        usage = payload.get("usage") or {}
        return Generation(
            text=raw,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_ms=latency_ms,
            prompt_cut_tokens=fitted.cut_tokens,
        )


class VllmOfflineBackend(LoadedOnce):
    """vllm.LLM inside the GPU worker process; loaded once, batched, prefix caching on."""

    name = "vllm"
    _cache: ClassVar[dict[tuple[str, str], VllmOfflineBackend]] = {}
    _lock = threading.Lock()

    def __init__(self, base_model: str, adapter_path: str = "") -> None:
        from vllm import LLM

        self.llm = LLM(
            model=base_model,
            enable_prefix_caching=True,
            enable_lora=bool(adapter_path),
            max_model_len=settings.VLLM_MAX_MODEL_LEN,
            gpu_memory_utilization=settings.VLLM_GPU_MEMORY_UTILIZATION,
            limit_mm_per_prompt={"image": MAX_IMAGES},
        )
        self.adapter_path = adapter_path
        # The Hugging Face tokenizer (a VLM's processor) of the model vLLM just loaded: prompts are cut to
        # VLLM_MAX_MODEL_LEN before the engine sees them (it would refuse or truncate them otherwise).
        self.fitter = PromptFitter.load(base_model)

    def decide_batch(self, contents: list[ContentBundle], policy: PolicySpec) -> list[BackendResult]:
        prompts = [policy_prompt(c, policy, image_paths=c.image_paths) for c in contents]
        schema = json_schema(policy.output_format, policy.labels(), policy.scenes())
        return [
            _result(g, policy)
            for g in self.generate_texts(prompts, max_new_tokens=settings.VLM_MAX_NEW_TOKENS, json_schema=schema)
        ]

    def generate_texts(
        self, prompts: list[Prompt], *, max_new_tokens: int, json_schema: dict[str, Any] | None = None
    ) -> list[Generation]:
        """One batched ``chat`` call (greedy; guided JSON when ``json_schema`` is given)."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        fitted = [_fitted(self.fitter, p, max_new_tokens) for p in prompts]
        if not fitted:
            return []
        params = SamplingParams(
            temperature=0,
            max_tokens=fitted[0].max_new_tokens,  # one context, so one cap for the whole batch
            **({"structured_outputs": StructuredOutputsParams(json=json_schema)} if json_schema is not None else {}),
        )
        lora = None
        if self.adapter_path:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("adapter", 1, self.adapter_path)
        started = time.perf_counter()
        outputs = self.llm.chat([_openai_messages(f.prompt) for f in fitted], params, use_tqdm=False, lora_request=lora)
        per_item_ms = (time.perf_counter() - started) * 1000 / max(len(outputs), 1)
        return [
            Generation(
                text=o.outputs[0].text,
                prompt_tokens=len(o.prompt_token_ids or []),
                completion_tokens=len(o.outputs[0].token_ids),
                latency_ms=per_item_ms,
                prompt_cut_tokens=f.cut_tokens,
            )
            for o, f in zip(outputs, fitted, strict=True)
        ]
