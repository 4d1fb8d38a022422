"""Settings one of which only makes sense below another (``workbench.checks.SETTING_ORDERS``, workbench.E006) are
checked when a process starts, like the choices and the bounds: `manage.py check`, the web server and every Celery
worker refuse a pair out of order, naming both variables, both values and which to change. Before, each was within its
own bounds and the pair failed only when it happened: a soft time limit at or above its hard one never fired (the hard
kill came first and the failure went unrecorded on the video), VLM_MAX_NEW_TOKENS above half the context was cut to
that half (a long verdict stopped mid-JSON), a worker beating less often than WORKER_SEEN_SECONDS left /readyz between
beats, an evaluation beating less often than the reaper's stale age was failed while it ran, a retry's base wait
above its longest made every retry wait the longest, and WHISPER_COMPUTE_TYPE=float16 with WHISPER_DEVICE=cpu failed
every transcription on the media worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils.module_loading import import_string

from tests.workbench.test_setting_bounds import set_bound_setting
from workbench.checks import SETTING_BOUNDS, SETTING_ORDERS, SETTINGS_TAG, SettingOrder, order_refusal

ROWS = {row.variable: row for row in SETTING_BOUNDS}


def _errors(check_id: str = "workbench.E006") -> list[tuple[str, str]]:
    return [(m.msg, m.hint or "") for m in run_checks(tags=[SETTINGS_TAG]) if m.is_serious() and m.id == check_id]


def _set(settings: Any, variable: str, value: float) -> None:
    """``variable``'s setting, where settings keeps it (a queue's time limits in TASK_TIME_LIMITS_S)."""
    row = ROWS[variable]
    set_bound_setting(settings, row, value if row.real else int(value))  # as settings.py reads it: env.int or env.float


def _value(variable: str) -> float:
    from workbench.checks import bound_value

    return float(bound_value(ROWS[variable]))


def test_the_defaults_are_in_order_and_each_side_is_a_variable_or_a_constant_of_the_code() -> None:
    assert _errors() == []
    for order in SETTING_ORDERS:
        assert order.lower in ROWS, order  # the side an operator lowers is always a variable
        if order.upper not in ROWS:
            assert isinstance(import_string(order.upper), (int, float, timedelta)), order
        assert order.why, order


def _pair_errors(order: SettingOrder) -> list[tuple[str, str]]:
    """This pair's errors only: a lower beside two uppers (VLM_MAX_NEW_TOKENS) may be out of order with the other."""
    return [(msg, hint) for msg, hint in _errors() if msg.startswith(f"{order.lower}=") and order.upper in msg]


def _kind(order: SettingOrder) -> str:
    return f"{order.lower}<{order.upper}"


@pytest.mark.parametrize("order", SETTING_ORDERS, ids=[_kind(o) for o in SETTING_ORDERS])
def test_a_pair_out_of_order_is_an_error_naming_both_variables_both_values_and_what_to_change(
    settings: Any, order: SettingOrder
) -> None:
    if order.upper in ROWS:
        _set(settings, order.upper, 100_000)
        high = 100_000.0
    else:
        constant = import_string(order.upper)
        high = constant.total_seconds() if isinstance(constant, timedelta) else float(constant)
    limit = high * order.share
    fits = limit if order.or_equal else limit - 1  # the most it may be: the edge itself where equal is allowed
    _set(settings, order.lower, fits)
    assert _pair_errors(order) == []
    wrong = limit + 1 if order.or_equal else limit
    _set(settings, order.lower, wrong)
    [(msg, hint)] = _pair_errors(order)
    assert msg.startswith(f"{order.lower}={wrong:g} must be "), msg
    assert (f"{order.upper}=100000" if order.upper in ROWS else f"{order.upper} ({high:g} s)") in msg
    assert msg.endswith(f": {order.why}."), msg
    assert order.lower in hint
    if order.upper in ROWS:
        assert f"raise {order.upper}" in hint


def test_what_the_messages_say() -> None:
    """The whole sentence, for the kinds of pair: a queue's soft and hard limit, half a context, a constant."""
    said = {_kind(o): o for o in SETTING_ORDERS}
    from django.test import override_settings

    limits = {"media": (3600, 3600), "default": (0, 0), "infer": (10500, 10800), "train": (0, 0)}
    with override_settings(TASK_TIME_LIMITS_S=limits, VLM_MAX_NEW_TOKENS=9000, EVALUATION_HEARTBEAT_SECONDS=900.0):
        assert order_refusal(said["MEDIA_TASK_SOFT_TIME_LIMIT_S<MEDIA_TASK_TIME_LIMIT_S"]) == (
            "MEDIA_TASK_SOFT_TIME_LIMIT_S=3600 must be below MEDIA_TASK_TIME_LIMIT_S=3600: the hard limit kills the "
            "task first, its soft limit never fires and no failure is recorded on the item."
        )
        assert order_refusal(said["VLM_MAX_NEW_TOKENS<TRANSFORMERS_MAX_CONTEXT_TOKENS"]) == (
            "VLM_MAX_NEW_TOKENS=9000 must be at most half of TRANSFORMERS_MAX_CONTEXT_TOKENS=16384 (8192): its answer "
            "is cut to half the context (fitting.answer_tokens), a verdict's JSON mid-way."
        )
        assert order_refusal(said["EVALUATION_HEARTBEAT_SECONDS<training.services.HEARTBEAT_STALE_AFTER"]) == (
            "EVALUATION_HEARTBEAT_SECONDS=900 must be below training.services.HEARTBEAT_STALE_AFTER (600 s): the "
            "reaper fails a running evaluation that has not beaten for that long: every long one, alive or not."
        )


def test_zero_is_off_where_it_means_none_and_a_side_out_of_its_bounds_is_left_to_e005(settings: Any) -> None:
    _set(settings, "MEDIA_TASK_SOFT_TIME_LIMIT_S", 3600)
    _set(settings, "MEDIA_TASK_TIME_LIMIT_S", 0)  # no hard limit: the soft one is the only one
    settings.KEYFRAME_SELECT_K = 50
    settings.KEYFRAME_MAX_CANDIDATES = 0  # no bound on the candidates
    assert _errors() == []
    settings.KEYFRAME_MAX_CANDIDATES = 20
    assert [msg.split(":")[0] for msg, _ in _errors()] == [
        "KEYFRAME_SELECT_K=50 must be at most KEYFRAME_MAX_CANDIDATES=20"
    ]
    settings.KEYFRAME_MAX_CANDIDATES = 0
    settings.VLLM_MAX_MODEL_LEN = 0  # out of its bounds: said once, by E005, not again as out of order
    assert _errors() == []
    assert [msg.split(" is ")[0] for msg, _ in _errors("workbench.E005")] == ["VLLM_MAX_MODEL_LEN=0"]


def test_a_half_precision_whisper_compute_type_on_the_cpu(settings: Any) -> None:
    settings.WHISPER_COMPUTE_TYPE = "float16"
    [(msg, hint)] = _errors()
    assert msg == (
        "WHISPER_COMPUTE_TYPE=float16 does not run on WHISPER_DEVICE=cpu: CTranslate2 refuses it there (each video's "
        "transcription failed on the media worker); on the CPU it takes one of: default, auto, int8, int8_float32, "
        "int16, float32, float."
    )
    assert "WHISPER_DEVICE=cuda" in hint
    settings.WHISPER_DEVICE = "cuda"  # the GPU media worker's
    assert _errors() == []
    settings.WHISPER_DEVICE = "auto"  # the device is found on the worker: nothing to say at start
    assert _errors() == []
    settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE = "cpu", "int8_float32"
    assert _errors() == []
    settings.WHISPER_COMPUTE_TYPE = "fp16"  # not a compute type at all: E001 says so, not this check
    assert _errors() == []
    assert [msg.split(" is ")[0] for msg, _ in _errors("workbench.E001")] == ["WHISPER_COMPUTE_TYPE='fp16'"]


def test_manage_py_check_and_a_worker_refuse_a_pair_out_of_order(settings: Any) -> None:
    from celery import signals

    settings.WORKER_HEARTBEAT_SECONDS = 60.0  # WORKER_SEEN_SECONDS is 60: the key lapses before each beat
    with pytest.raises(SystemCheckError, match=r"workbench\.E006\) WORKER_HEARTBEAT_SECONDS=60 must be below"):
        call_command("check", verbosity=0)
    with pytest.raises(SystemExit, match=r"workbench\.E006\) WORKER_HEARTBEAT_SECONDS=60 must be below"):
        signals.worker_init.send(sender=None)
