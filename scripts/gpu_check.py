"""The Python half of scripts/gpu_check.sh (run by it, in the GPU virtual environment).

    python scripts/gpu_check.py build  WORK         # the tiny random Qwen2.5-VL + keyframes + snapshots
    python scripts/gpu_check.py train  WORK [--cpu] # one short SFT and one DPO job body on CUDA (LoRA)
    python scripts/gpu_check.py offline WORK        # our vLLM offline backend (vllm.LLM) + throughput
    python scripts/gpu_check.py server WORK URL     # our vLLM server backend against `vllm serve`

Each prints one JSON line of figures. No database or broker is touched: the runners and backends
are called as the worker calls them, without the job rows around them.

Without a GPU, ``build``, ``train WORK --cpu`` (2 steps on the CPU) and ``server`` against any
OpenAI-compatible endpoint check this script's own code (tests/test_gpu_check.py runs them).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
# Settings would start the embedded PostgreSQL/Redis when these are unset; nothing here uses them.
os.environ.setdefault("DATABASE_URL", "postgres://unused:unused@127.0.0.1:9/unused")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:9/0")

# vLLM's attention kernels take head sizes of 32/64 and up, not the suite's 16 (tests/tiny_models.py).
HEAD_DIM = 64
# The tiny model's max_position_embeddings: vLLM refuses a longer max_model_len.
MAX_MODEL_LEN = 4096


def _setup() -> None:
    import django

    django.setup()


def _policy() -> Any:
    from moderation.inference.backends import PolicySpec
    from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy

    return PolicySpec(kuaimod_taxonomy(), SAFE_LABEL)


def _bundles(work: Path, n: int) -> list[Any]:
    from moderation.inference.backends import ContentBundle, Frame, Segment

    frames = sorted(str(p) for p in (work / "keyframes").glob("*.jpg"))
    return [
        ContentBundle(
            title=f"Item {i}",
            description="",
            uploader="",
            segments=[Segment(i, 0.0, 2.0, "pay me by bank transfer" if i % 2 else "cooking noodles")],
            frames=[Frame(j, float(j), True) for j in range(len(frames))],
            ocr=["limited offer"],
            image_paths=frames,
        )
        for i in range(n)
    ]


def build(work: Path) -> None:
    from PIL import Image

    from moderation.inference.prompts import build_prompt
    from tests.tiny_models import build_tiny_qwen2_5_vl

    started = time.perf_counter()
    model = build_tiny_qwen2_5_vl(work / "tiny-qwen2_5_vl", head_dim=HEAD_DIM)
    config = json.loads((model / "config.json").read_text())
    text = config.get("text_config", config)
    if text["max_position_embeddings"] < MAX_MODEL_LEN:
        raise SystemExit(f"the tiny model holds {text['max_position_embeddings']} positions, < {MAX_MODEL_LEN}")
    (work / "keyframes").mkdir(parents=True, exist_ok=True)
    for i, size in enumerate([(112, 84), (64, 64)]):
        Image.new("RGB", size, (200, 40 * i, 30)).save(work / "keyframes" / f"kf{i}.jpg")
    policy = _policy()
    sft_rows, dpo_rows = [], []
    for bundle in _bundles(work, 8):
        prompt = build_prompt(
            bundle, taxonomy=policy.taxonomy, safe_label=policy.safe_label, image_paths=bundle.image_paths
        )
        answer = "[Content extraction] x\n[Analysis] y\n[Intermediate check] z\n[User-feedback analysis] none\n"
        chosen = answer + "[Final judgment] label: 引导私下交易 | confidence: 0.90"
        rejected = answer + "[Final judgment] label: 正向 | confidence: 0.90"
        user = [{"type": "image"} for _ in prompt.image_paths] + [{"type": "text", "text": prompt.user}]
        sft_rows.append(
            {
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": prompt.system}]},
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": [{"type": "text", "text": chosen}]},
                ],
                "images": prompt.image_paths,
            }
        )
        dpo_rows.append(
            {
                "prompt": f"{prompt.system}\n\n{prompt.user}\n",
                "system": prompt.system,
                "user": prompt.user,
                "chosen": chosen,
                "rejected": rejected,
                "images": prompt.image_paths,
            }
        )
    for name, rows in (("sft.jsonl", sft_rows), ("dpo.jsonl", dpo_rows)):
        (work / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(json.dumps({"step": "build", "model": str(model), "seconds": round(time.perf_counter() - started, 1)}))


def train(work: Path, *, cpu: bool = False) -> None:
    import torch

    from training.runners.common import TrainRun
    from training.runners.dpo import dpo_train
    from training.runners.sft import sft_train
    from training.services import DEFAULT_PARAMS, KIND_PARAMS

    if not cpu and not torch.cuda.is_available():
        raise SystemExit(f"no CUDA device visible to torch {torch.__version__} (CUDA build: {torch.version.cuda})")
    model = str(work / "tiny-qwen2_5_vl")
    figures: dict[str, Any] = {"step": "train", "device": "cpu" if cpu else torch.cuda.get_device_name(0)}
    for kind, runner in (("sft", sft_train), ("dpo", dpo_train)):
        params = {
            **DEFAULT_PARAMS,
            **KIND_PARAMS[kind],
            "max_steps": 2 if cpu else 20,
            "batch_size": 4,
            "max_length": MAX_MODEL_LEN,
        }
        if not cpu:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        trainer, result = runner(
            TrainRun(base_model=model, jsonl_path=str(work / f"{kind}.jsonl"), output_dir=work / kind, params=params)
        )
        seconds = time.perf_counter() - started
        trainer.save_model(str(work / kind / "adapter"))
        if not cpu and not next(trainer.model.parameters()).is_cuda:
            raise SystemExit(f"the {kind} trainer did not put the model on the GPU")
        figures[kind] = {
            "steps": result.global_step,
            "train_loss": round(result.training_loss, 4),
            "wall_s": round(seconds, 1),
            "train_steps_per_s": round(result.metrics.get("train_steps_per_second", 0.0), 2),
            "peak_gpu_mib": None if cpu else round(torch.cuda.max_memory_allocated() / 2**20),
        }
    print(json.dumps(figures))


def offline(work: Path) -> None:
    from django.conf import settings

    from moderation.inference.backends.vllm_backend import VllmOfflineBackend

    settings.VLLM_MAX_MODEL_LEN = MAX_MODEL_LEN
    settings.VLLM_GPU_MEMORY_UTILIZATION = 0.3
    settings.VLM_MAX_NEW_TOKENS = 256
    figures: dict[str, Any] = {"step": "vllm-offline"}
    for name, adapter in (("base", ""), ("sft_lora", str(work / "sft" / "adapter"))):
        started = time.perf_counter()
        backend = VllmOfflineBackend(str(work / "tiny-qwen2_5_vl"), adapter)
        load_s = time.perf_counter() - started
        bundles = _bundles(work, 64)
        started = time.perf_counter()
        results = backend.decide_batch(bundles, _policy())
        seconds = time.perf_counter() - started
        tokens = sum(r.completion_tokens for r in results)
        figures[name] = {
            "load_s": round(load_s, 1),
            "items": len(results),
            "items_per_s": round(len(results) / seconds, 1),
            "output_tokens_per_s": round(tokens / seconds),
            "parsed": sum(1 for r in results if not r.parse_error),  # guided JSON: every answer parses
        }
        del backend
    print(json.dumps(figures))


def server(work: Path, url: str) -> None:
    from moderation.inference.backends.vllm_backend import VllmServerBackend

    figures: dict[str, Any] = {"step": "vllm-server"}
    for name, adapter in (("base", ""), ("sft_lora", str(work / "sft" / "adapter"))):
        backend = VllmServerBackend(url, str(work / "tiny-qwen2_5_vl"), adapter)
        bundles = _bundles(work, 16)
        started = time.perf_counter()
        results = backend.decide_batch(bundles, _policy())
        seconds = time.perf_counter() - started
        figures[name] = {
            "items": len(results),
            "seconds_per_item": round(seconds / len(results), 3),
            "parsed": sum(1 for r in results if not r.parse_error),
            "prompt_tokens": results[0].prompt_tokens,
        }
    print(json.dumps(figures))


def main() -> None:
    command, work = sys.argv[1], Path(sys.argv[2])
    _setup()
    if command == "build":
        build(work)
    elif command == "train":
        train(work, cpu="--cpu" in sys.argv[3:])
    elif command == "offline":
        offline(work)
    elif command == "server":
        server(work, sys.argv[3])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
