"""Tiny random-weight models the tests build themselves (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "[Content extraction] the video shows a person talking [frame:1]",
    "[Analysis] the speech asks viewers to add wechat for a private deal [t=2.5s]",
    "[Intermediate check] evidence is consistent",
    "[User-feedback analysis] no reports",
    "[Final judgment] label: 正向 | confidence: 0.9",
    "<think>Visual location: Risk screening: Causal analysis:</think><answer>{}</answer>",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def build_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_tiny_llava(path: Path) -> Path:
    """A LLaVA-class VLM: tiny CLIP vision tower + tiny Llama, saved with its processor."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = build_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    text = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
        patch_size=8,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
    )
    model.generation_config.max_new_tokens = 16
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# --- Qwen2.5-VL ---------------------------------------------------------------------------------

# Qwen's chat format (ChatML with vision markers): every turn is <|im_start|>role\n…<|im_end|>\n, an
# image is <|vision_start|><|image_pad|><|vision_end|> (the processor expands <|image_pad|> into one
# token per merged patch), and a conversation without a system turn gets Qwen's default one.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen_corpus() -> list[str]:
    from training.tiny_model import _tokenizer_corpus

    return [*CORPUS, *_tokenizer_corpus(), "You are a helpful assistant.", "system user assistant"]


QWEN_VOCAB_CAP = 2048


def build_qwen_tokenizer():  # type: ignore[no-untyped-def]
    """A small byte-level BPE trained here, carrying Qwen's special and vision tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Room for every merge the corpus has (it stops at ~1,540 tokens), as the tiny Llama's tokenizer does:
    # real Qwen's 151k-token vocabulary holds these English words whole. Capped at 1,024, the same
    # prompt and answer were 1.4-1.6x as many tokens as the Llama's (an answer of 76 against 57), so the
    # two architectures were not trained on the same task.
    trainer = trainers.BpeTrainer(
        vocab_size=QWEN_VOCAB_CAP,
        special_tokens=QWEN_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_qwen_corpus() * 4, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",  # noqa: S106 (special tokens, not passwords)
        pad_token="<|endoftext|>",  # noqa: S106
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    hf.chat_template = QWEN_CHAT_TEMPLATE
    return hf


# The language model's weights are drawn with this std (transformers' default is 0.02), for the same
# reason as the tiny Llama's (training/tiny_model.py): with 0.02 the logits (RMS-normed final state
# against tied embeddings) cannot leave about ±1.3 under any LoRA adapter, so SFT cannot teach it a format.
QWEN_INIT_STD = 0.1
# Bump when the recipe changes; a cached folder (ensure_tiny_qwen2_5_vl) built by another recipe is rebuilt.
QWEN_RECIPE = "3"


def build_tiny_qwen2_5_vl(path: Path, *, seed: int = 0, init_std: float = QWEN_INIT_STD, head_dim: int = 16) -> Path:
    """A Qwen2.5-VL with random weights: 2 text layers, hidden 64, vision depth 2, saved with its processor.

    The processor is Qwen2.5-VL's own with the PIL image processor (no torchvision) and no video
    processor. Images are resized to multiples of 28 px (patch 14 × merge 2) between 56×56 and 112×112,
    so a keyframe costs 4–16 merged tokens. mrope sections (temporal, height, width) sum to half the
    attention head size (64 / 4 heads = 16 → 2 + 3 + 3 = 8).

    ``head_dim=64`` builds the same recipe with 2 heads of 64 in both towers (text hidden 128, vision
    hidden 128; mrope 8 + 12 + 12): vLLM's attention kernels take head sizes from 32 or 64 up (FlashAttention
    32–256, FlashInfer 64/128/256), not 16, so scripts/gpu_check.sh serves that one.
    """
    heads = 4 if head_dim == 16 else 2
    hidden = heads * head_dim
    vision_hidden = 32 if head_dim == 16 else 2 * head_dim
    mrope = [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from moderation.inference.backends.vlm_processor import build_qwen_processor

    tokenizer = build_qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "initializer_range": init_std,
        },
        vision_config={
            "depth": 2,
            "hidden_size": vision_hidden,
            "intermediate_size": 2 * vision_hidden,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.max_new_tokens = 16
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    processor = build_qwen_processor(
        Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112), tokenizer, QWEN_CHAT_TEMPLATE
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    shape = "" if head_dim == 16 else f" head_dim={head_dim}"
    (Path(path) / "workbench_recipe.txt").write_text(f"qwen2_5_vl {QWEN_RECIPE} std={init_std}{shape}")
    return path


def ensure_tiny_qwen2_5_vl(path: Path) -> str:
    """The tiny Qwen2.5-VL cached at ``path`` (built once per recipe, in a temporary folder renamed into place)."""
    import shutil
    import tempfile

    marker = path / "workbench_recipe.txt"
    wanted = f"qwen2_5_vl {QWEN_RECIPE} std={QWEN_INIT_STD}"
    if marker.exists() and marker.read_text() == wanted:
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    build_tiny_qwen2_5_vl(tmp)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return str(path)
