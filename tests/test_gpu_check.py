"""scripts/gpu_check.sh without a GPU: the parts that run anywhere, run here.

The script must work as one command on a fresh CUDA machine that reaches only the package registries,
and nothing proves that before a GPU is lent, so what can be checked on CPU is: the shell parses (and
passes shellcheck where it is installed); the GPU requirement set is the CPU set with gpu.txt's pins
replacing cpu.txt's (pip refuses two pins of one package, and vllm's mistral_common wants numpy<2.4);
the Python half builds the tiny Qwen2.5-VL at a head size vLLM's kernels take; and its server step sends
our server backend's requests (the model names the script serves, images within its per-prompt
limit) and prints its figures as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.vllm_stub import vllm_stub

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def _load(name: str):  # type: ignore[no-untyped-def]
    """A script as a module, leaving the test process's environment as it was (gpu_check sets defaults)."""
    before = dict(os.environ)
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for key in set(os.environ) - set(before):
        del os.environ[key]
    return module


def test_the_shell_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)  # noqa: S603, S607
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(SCRIPT)], check=True)  # noqa: S603, S607


def test_the_gpu_set_is_the_cpu_set_with_gpu_pins_replacing_cpu_pins():
    reqs = _load("gpu_requirements")
    cpu = {reqs.package(line): line.strip() for line in (ROOT / "requirements/cpu.txt").read_text().splitlines()}
    cpu.pop(None, None)
    gpu = [line for line in reqs.expand(ROOT / "requirements/gpu.txt")]
    names = [reqs.package(line) for line in gpu]

    assert len(names) == len(set(names)), "a package pinned twice: pip would refuse the set"
    assert "vllm==0.33.0" in gpu and "numpy==2.3.5" in gpu
    assert {n for n in cpu if n != "numpy"} <= set(names)  # nothing of the CPU set is dropped
    assert all(cpu[n] in gpu for n in cpu if n != "numpy")


@pytest.mark.integration
def test_build_and_server_steps_on_cpu(tmp_path, capsys):
    gpu_check = _load("gpu_check")
    gpu_check.build(tmp_path)
    built = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    config = json.loads((tmp_path / "tiny-qwen2_5_vl" / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    sh = SCRIPT.read_text()
    served_len = int(re.search(r"--max-model-len (\d+)", sh).group(1))  # type: ignore[union-attr]
    image_limit = json.loads(re.search(r"--limit-mm-per-prompt '(\{.*?\})'", sh).group(1))["image"]  # type: ignore[union-attr]
    lora_name = re.search(r'--lora-modules "(\w+)=\$WORK/sft/adapter"', sh).group(1)  # type: ignore[union-attr]

    assert built["step"] == "build"
    assert text["hidden_size"] // text["num_attention_heads"] == 64 == vision["hidden_size"] // vision["num_heads"]
    assert served_len == gpu_check.MAX_MODEL_LEN <= text["max_position_embeddings"]
    assert all(len(json.loads(line)["images"]) == 2 for line in (tmp_path / "sft.jsonl").read_text().splitlines())

    answer = {
        "content_extraction": "x",
        "analysis": "y",
        "intermediate_check": "z",
        "user_feedback": "none",
        "label": "引导私下交易",
        "confidence": 0.9,
    }
    with vllm_stub(json.dumps(answer, ensure_ascii=False)) as stub:
        gpu_check.server(tmp_path, stub.url)
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert figures["step"] == "vllm-server"
    assert figures["base"]["parsed"] == figures["base"]["items"] == 16 == figures["sft_lora"]["parsed"]
    models = [body["model"] for body in stub.bodies]
    assert models == [str(tmp_path / "tiny-qwen2_5_vl")] * 16 + [lora_name] * 16  # what `vllm serve` serves
    images = [sum(p["type"] == "image_url" for p in body["messages"][1]["content"]) for body in stub.bodies]
    assert set(images) == {2} and max(images) <= image_limit
    assert all(body["response_format"]["type"] == "json_schema" for body in stub.bodies)
