"""WHISPER_DEVICE=auto with a half-precision WHISPER_COMPUTE_TYPE on a worker without a GPU.

The start check (workbench.E006) refuses a half-precision type only with WHISPER_DEVICE=cpu: with ``auto`` the device
is known only on the worker. There CTranslate2 refused the type on a node without CUDA, and each video's speech to
text failed as audio that "could not be decoded". The worker now runs the CPU counterpart of the type and says so at
its start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from moderation.media import extractors


@pytest.mark.parametrize(
    ("asked", "on_cpu"),
    [
        ("float16", "float32"),
        ("bfloat16", "float32"),
        ("int8_float16", "int8_float32"),
        ("int8_bfloat16", "int8_float32"),
    ],
)
def test_auto_runs_a_half_precision_type_on_the_gpu_or_its_cpu_counterpart(
    settings: Any, asked: str, on_cpu: str
) -> None:
    settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE = "auto", asked

    on_a_gpu_node = extractors.whisper_placement(cuda_devices=lambda: 1)
    assert (on_a_gpu_node.device, on_a_gpu_node.compute_type, on_a_gpu_node.fallback) == ("cuda", asked, "")

    without_gpu = extractors.whisper_placement(cuda_devices=lambda: 0)
    assert (without_gpu.device, without_gpu.compute_type) == ("cpu", on_cpu)
    assert without_gpu.fallback.startswith(
        f"WHISPER_DEVICE=auto found no CUDA device on this worker, and CTranslate2 refuses WHISPER_COMPUTE_TYPE={asked} "
        f"on the CPU: speech to text runs on the CPU with {on_cpu} instead"
    )


def test_what_the_settings_ask_is_kept_where_it_runs(settings: Any) -> None:
    def no_count() -> int:
        raise AssertionError("the device is counted only for auto with a half-precision type")

    for device, compute_type in [("auto", "int8"), ("auto", "default"), ("cuda", "float16"), ("cpu", "int8")]:
        settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE = device, compute_type
        assert extractors.whisper_placement(cuda_devices=no_count) == extractors.WhisperPlacement(device, compute_type)


def test_a_cpu_worker_with_auto_and_float16_loads_the_model_and_says_why_at_its_start(
    settings: Any, caplog: pytest.LogCaptureFixture, speech_clip: Path
) -> None:
    from celery import signals

    if extractors.cuda_device_count():
        pytest.skip("this node has a CUDA device: float16 runs there as asked")
    settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE = "auto", "float16"

    with caplog.at_level(logging.WARNING, logger="moderation.media.extractors"):
        signals.worker_init.send(sender=None)
    [note] = [r.getMessage() for r in caplog.records if "WHISPER_DEVICE=auto" in r.getMessage()]
    assert "runs on the CPU with float32 instead" in note and "Set WHISPER_COMPUTE_TYPE=float32" in note

    # CTranslate2 refused float16 here: "Requested float16 compute type, but the target device or backend do not
    # support efficient float16 computation".
    model = extractors.whisper_model()
    assert (model.model.device, model.model.compute_type) == ("cpu", "float32")
    transcript = extractors.transcribe(speech_clip)
    assert transcript.language == "en" and transcript.segments
