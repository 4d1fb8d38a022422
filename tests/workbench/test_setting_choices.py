"""A setting that chooses among values the code knows (``workbench.checks.SETTING_CHOICES``) is checked when a process
starts: `manage.py check` (and so `runserver`, `migrate`), the web server and every Celery worker refuse a value the
code does not know, naming the setting, the value and the allowed ones. Before, a typo showed only when a task read
the setting (KEYFRAME_SCORER=clipp: every video's selection stage failed on the media workers), or never (a
TRAINING_GATE_MARGINS key not a metric: that margin silently not applied; TRAINING_LAUNCHER=acelerate: run in
process)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils.module_loading import import_string

from workbench.checks import SETTING_CHOICES, SETTINGS_TAG, settings_refusal

ROOT = Path(__file__).resolve().parents[2]


def _errors() -> list[tuple[str, str, str]]:
    return [(m.id or "", m.msg, m.hint or "") for m in run_checks(tags=[SETTINGS_TAG]) if m.is_serious()]


def test_the_defaults_pass_and_each_row_reads_its_choices_where_the_code_keeps_them() -> None:
    assert _errors() == []
    assert settings_refusal() == ""
    for row in SETTING_CHOICES:
        assert bool(row.choices) != bool(row.parse), row
        assert import_string(row.choices or row.parse), row
    from moderation.media import aks, analyzers
    from moderation.reproduction.selectors import FRAME_CHANNELS

    # The rows name the collections the code branches on, not copies of them.
    rows = {row.name: import_string(row.choices) for row in SETTING_CHOICES if row.choices}
    assert rows["KEYFRAME_SELECTION"] is aks.STRATEGIES
    assert rows["KEYFRAME_SCORER"] is analyzers.KEYFRAME_SCORERS
    assert rows["REPRO_FRAME_NEIGHBOURS"] is FRAME_CHANNELS


# (setting, a mistyped value, the check's id, what the message says). Every row of the table, each kind of error.
MISTYPED: list[tuple[str, Any, str, str]] = [
    ("KEYFRAME_SCORER", "clipp", "workbench.E001", "KEYFRAME_SCORER='clipp' is not one of: offline, clip."),
    (
        "KEYFRAME_SELECTION",
        "adaptve",
        "workbench.E001",
        "KEYFRAME_SELECTION='adaptve' is not one of: adaptive, bin_top, uniform.",
    ),
    ("PATCH_SALIENCY", "vti", "workbench.E001", "PATCH_SALIENCY='vti' is not one of: ocr, vit."),
    ("OCR_DEVICE", "gpu", "workbench.E001", "OCR_DEVICE='gpu' is not one of: cpu, cuda."),
    ("WHISPER_DEVICE", "gpu", "workbench.E001", "WHISPER_DEVICE='gpu' is not one of: cpu, cuda, auto."),
    (
        "WHISPER_COMPUTE_TYPE",
        "fp16",
        "workbench.E001",
        "WHISPER_COMPUTE_TYPE='fp16' is not one of: default, auto, int8, int8_float32, int8_float16, int8_bfloat16, "
        "int16, float16, bfloat16, float32, float.",
    ),
    (
        "MEDIA_S3_ADDRESSING_STYLE",
        "Path",
        "workbench.E001",
        "MEDIA_S3_ADDRESSING_STYLE='Path' is not one of: path, virtual, auto.",
    ),
    (
        "REPRO_FRAME_NEIGHBOURS",
        "frames",
        "workbench.E001",
        "REPRO_FRAME_NEIGHBOURS='frames' is not one of: video, keyframes, both.",
    ),
    (
        "REPRO_HNSW_ITERATIVE_SCAN",
        "of",
        "workbench.E001",
        "REPRO_HNSW_ITERATIVE_SCAN='of' is not one of: relaxed_order, off.",
    ),
    (
        "TRAINING_LAUNCHER",
        "acelerate",
        "workbench.E001",
        "TRAINING_LAUNCHER='acelerate' is not one of: inprocess, accelerate.",
    ),
    (
        "TRAINING_GATE_PRIMARY_METRIC",
        "binary_acuracy",
        "workbench.E001",
        "TRAINING_GATE_PRIMARY_METRIC='binary_acuracy' is not one of: n, n_violative, binary_accuracy,",
    ),
    (
        "READYZ_REQUIRED_QUEUES",
        ["default", "infr"],
        "workbench.E002",
        "READYZ_REQUIRED_QUEUES names 'infr', not one of: default, media, infer, train.",
    ),
    (
        "TRAINING_GATE_MARGINS",
        {"binary_accuracy": 0.01, "violative_recal": 0.02},
        "workbench.E003",
        "TRAINING_GATE_MARGINS has the key 'violative_recal', not one of: n, n_violative, binary_accuracy,",
    ),
    (
        "REPRO_PDQ_CHUNKS",
        "12y21",
        "workbench.E004",
        "REPRO_PDQ_CHUNKS='12y21' is refused: REPRO_PDQ_CHUNKS must be CHUNKSxBITS within 256 bits",
    ),
]


def test_every_row_of_the_table_is_tested() -> None:
    assert sorted(name for name, *_ in MISTYPED) == sorted(row.name for row in SETTING_CHOICES)


@pytest.mark.parametrize(("name", "value", "check_id", "said"), MISTYPED, ids=[m[0] for m in MISTYPED])
def test_a_mistyped_choice_is_an_error_naming_the_setting_the_value_and_the_choices(
    settings: Any, name: str, value: Any, check_id: str, said: str
) -> None:
    setattr(settings, name, value)
    errors = _errors()
    assert [(i, msg[: len(said)]) for i, msg, _hint in errors] == [(check_id, said)]
    assert name in errors[0][2]  # the hint says which setting to change


def test_manage_py_check_refuses_it_and_a_case_the_code_folds_is_accepted(settings: Any) -> None:
    settings.KEYFRAME_SCORER = "CLIP"  # the code reads it lower-cased
    settings.PATCH_SALIENCY = "Vit"
    call_command("check", verbosity=0)
    settings.KEYFRAME_SELECTION = "Adaptive"  # read as it is: aks.select refused it at the selection stage
    with pytest.raises(SystemCheckError, match=r"workbench\.E001\) KEYFRAME_SELECTION='Adaptive' is not one of"):
        call_command("check", verbosity=0)


def test_the_web_server_refuses_to_start_with_a_mistyped_choice(settings: Any) -> None:
    """gunicorn loads workbench/wsgi.py once, at its start: it stops there, not at the first request reading it."""
    settings.TRAINING_LAUNCHER = "acelerate"
    with pytest.raises(ImproperlyConfigured, match=r"TRAINING_LAUNCHER='acelerate' is not one of: inprocess, accel"):
        runpy.run_path(str(ROOT / "workbench" / "wsgi.py"))


def test_a_worker_refuses_to_start_with_a_mistyped_choice(settings: Any) -> None:
    """Celery runs no system checks: the worker took tasks and each failed on the setting (the media worker's every
    selection stage, here). Its start signal now stops it (SystemExit, which Celery does not swallow: the development
    key's refusal beside it, tests/test_settings.py, shows a real worker exiting on it)."""
    from celery import signals

    settings.KEYFRAME_SCORER = "clipp"
    with pytest.raises(SystemExit) as stopped:
        signals.worker_init.send(sender=None)
    assert str(stopped.value).startswith("The settings have errors:\n")
    assert "(workbench.E001) KEYFRAME_SCORER='clipp' is not one of: offline, clip." in str(stopped.value)


class _Worker:
    """What worker_init's sender (Celery's WorkController) carries that the check reads: the queues Celery selected
    from the worker's -Q (``app.amqp.queues.consume_from``), without selecting them on this process's app."""

    def __init__(self, *queues: str) -> None:
        self.app = SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=dict.fromkeys(queues))))


def test_a_worker_on_a_queue_that_is_not_ours_refuses_to_start() -> None:
    """`-Q infr`: Celery made the queue and the worker waited on it for good (nothing is routed there), while the
    infer queue had no worker. The worker's own queues, as Celery selected them from its -Q, are checked at start."""
    from celery import signals

    with pytest.raises(SystemExit) as stopped:
        signals.worker_init.send(sender=_Worker("infr", "media"))
    assert "This worker was asked to consume 'infr', not a queue of the workbench (one of: default, media, infer, " \
        "train)" in str(stopped.value)  # fmt: skip
    signals.worker_init.send(sender=_Worker("infer", "default"))  # our queues: it starts
    signals.worker_init.send(sender=_Worker())  # no -Q: every queue of ours


def test_the_whisper_choices_are_what_the_installed_ctranslate2_takes() -> None:
    """WHISPER_DEVICE and WHISPER_COMPUTE_TYPE were read only when the media worker first loaded the model: `gpu` or
    `fp16` failed each video's transcription there ("unsupported device gpu", "Invalid compute type: fp16"). The
    names are written in moderation.media.extractors (importing ctranslate2 at every start is what the web process
    must not do); here they are held to the installed CTranslate2: the concrete types it runs on this CPU are those
    the list marks as running on the CPU (all of them on an x86 CPU), and none marked GPU-only runs here."""
    import ctranslate2

    from moderation.media.extractors import WHISPER_COMPUTE_TYPES

    on_cpu = {name for name, cpu in WHISPER_COMPUTE_TYPES.items() if cpu} - {"default", "auto", "float"}
    assert set(ctranslate2.get_supported_compute_types("cpu")) <= on_cpu
    assert set(ctranslate2.get_supported_compute_types("cpu")).isdisjoint(
        name for name, cpu in WHISPER_COMPUTE_TYPES.items() if not cpu
    )


def test_the_addressing_style_is_botocores(settings: Any) -> None:
    """botocore's Config refused `Path` at the first use of the store (every upload on object storage); each style of
    the list it takes."""
    from botocore.config import Config
    from botocore.exceptions import InvalidS3AddressingStyleError

    from workbench.storage import S3_ADDRESSING_STYLES

    for style in S3_ADDRESSING_STYLES:
        Config(s3={"addressing_style": style})
        settings.MEDIA_S3_ADDRESSING_STYLE = style
        assert _errors() == []
    with pytest.raises(InvalidS3AddressingStyleError):
        Config(s3={"addressing_style": "Path"})
