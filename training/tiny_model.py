"""A tiny random-weight Llama built locally, so the training loop runs anywhere with no download.

It knows nothing; it exists so SFT/DPO/GRPO jobs, adapters and model registration can be exercised
end to end on a laptop or in CI, and it is trainable: a LoRA adapter can teach it a format and a
rule in a few minutes on a CPU (bench/loop_learns.py). Worker-side only: imports ``tokenizers``/``transformers`` inside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

TINY_MODEL_DIRNAME = "tiny-llama"
# Bump when the recipe changes; a folder built by another recipe is rebuilt.
TINY_MODEL_RECIPE = "3"
RECIPE_FILE = "workbench_recipe.txt"
INIT_STD = 0.1

# Chat template so TRL (and anyone calling apply_chat_template) can format conversations.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]


def _tokenizer_corpus() -> list[str]:
    from moderation.inference.backends import STAGES
    from moderation.inference.prompts import rubric_text
    from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy

    # The real rubric, so the prompts the jobs train on tokenize compactly.
    corpus = [
        *rubric_text(kuaimod_taxonomy(), SAFE_LABEL, "kuaimod").splitlines(),
        *rubric_text(kuaimod_taxonomy(), SAFE_LABEL, "blm").splitlines(),
        "You are a short-video content moderator. Judge the video against the policy.",
        "Title: Description: Transcript: Labels: Policy: Answer:",
        "The video shows a person talking to the camera about a product and a limited time offer.",
        "Non-violative: no policy rule is supported by the extracted evidence.",
        "Message me privately on WeChat for a better price outside the app.",
        " ".join(title + ":" for _key, title in STAGES),
        SAFE_LABEL,
    ]
    for major in kuaimod_taxonomy():
        corpus.append(f"{major['key']} {major['name']}")
        for tag in major["tags"]:
            corpus.append(f"- {tag['key']} ({tag['name']}) " + " ".join(tag["keywords"]))
    return corpus


def _build(target: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))  # noqa: S106 (a token, not a password)
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(_tokenizer_corpus() * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="<unk>",  # noqa: S106 (special tokens, not passwords)
        bos_token="<s>",  # noqa: S106
        eos_token="</s>",  # noqa: S106
        pad_token="<pad>",  # noqa: S106
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # Weights drawn with std 0.1, not transformers' 0.02: the logits are the final hidden state
        # (RMS-normed, norm ~8) against the tied embeddings, so with 0.02 no logit can leave about
        # ±1.3 whatever a LoRA adapter does (the embeddings, lm_head and norms are frozen) — the SFT
        # loss stalls near ln(vocab) and no answer ever parses. With 0.1 an adapter can make one token
        # win by a wide margin, as in a pretrained model.
        initializer_range=INIT_STD,
    )
    import torch

    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / RECIPE_FILE).write_text(TINY_MODEL_RECIPE)


def ensure_tiny_base_model(path: str | Path | None = None) -> str:
    """Build the tiny model at ``path`` (default ``MODELS_DIR/tiny-llama``) unless it is there; return the path.

    Built in a temporary folder beside the target and renamed into place, so a concurrent or
    interrupted build never leaves a half-written model where a job would load it.
    """
    target = Path(path) if path else Path(settings.MODELS_DIR) / TINY_MODEL_DIRNAME
    if _is_current(target):
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _build(tmp)
        if target.exists() and not _is_current(target):  # an older recipe: move it aside, then drop it
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            with contextlib.suppress(OSError):  # another process may have moved it first
                os.rename(target, old / "model")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target):  # not a lost race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def _is_current(target: Path) -> bool:
    marker = target / RECIPE_FILE
    return (target / "config.json").exists() and marker.exists() and marker.read_text().strip() == TINY_MODEL_RECIPE


def resolve_base_model(base_model: str) -> str:
    """The base model a job trains: ``base_model``, else TRAINING_BASE_MODEL, else the tiny local Llama."""
    chosen = (base_model or settings.TRAINING_BASE_MODEL or "").strip()
    return chosen or ensure_tiny_base_model()
