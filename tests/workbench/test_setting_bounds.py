"""The numeric settings (every `env.int` and `env.float` of settings.py) are checked against their bounds when a
process starts (``workbench.checks.SETTING_BOUNDS``, workbench.E005): `manage.py check`, the web server and every Celery
worker refuse a value out of range, naming the variable, the value and the range. Before, none had a bound: a 0 or a
negative value made the app refuse everything (WORKBENCH_UPLOAD_MAX_BYTES=0: every upload; REVIEW_LEASE_SECONDS=0:
every claim expired when made), delete everything (a retention of 0 days) or loop (CASCADE_RETRAIN_AFTER_LABELS=0).
Where 0 means "off" (a time limit, a cap, a bound), 0 is allowed and only a negative value is refused. A float setting
that is a timeout or a share has no "off": 0 itself is refused (MEDIA_S3_CONNECT_TIMEOUT=0 failed every request to the
store), a fraction above 1 too (VLLM_GPU_MEMORY_UTILIZATION=85, a percent), and a value that is no finite number
(nan, inf: set in a settings module; django-environ refuses them in the environment)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from workbench.checks import SETTING_BOUNDS, SETTINGS_TAG, SettingBound, bound_allowed, bound_refusal, bound_value

ROOT = Path(__file__).resolve().parents[2]
ROWS = {row.variable: row for row in SETTING_BOUNDS}


def _env_variables(kind: str) -> list[str]:
    """The variables settings.py reads with `env.int("NAME", ...)` (``kind`` "int") or `env.float` ("float"), by its
    syntax tree (``_count_at_least_one``'s `env.int(name, ...)` refuses below 1 itself, in settings.py)."""
    tree = ast.parse((ROOT / "workbench" / "settings.py").read_text())
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == kind
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
        ):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(first.value)
            else:
                assert kind == "int" and isinstance(first, ast.Name) and first.id == "name", ast.unparse(node)
    return found


def test_every_numeric_setting_has_a_row_and_every_row_a_numeric_setting() -> None:
    """An `env.int` or `env.float` added to settings.py without a row in SETTING_BOUNDS fails here: decide its bounds
    there. A float's row says so (``real``: it takes 0.85), an integer's does not (it refuses 0.5)."""
    for kind, real in (("int", False), ("float", True)):
        variables = _env_variables(kind)
        assert len(variables) == len(set(variables))
        rows = sorted(row.variable for row in SETTING_BOUNDS if row.real == real)
        assert sorted(variables) == rows, (
            f"env.{kind} without a row: {sorted(set(variables) - set(rows))}; "
            f"a row for no env.{kind}: {sorted(set(rows) - set(variables))}"
        )
    assert len(SETTING_BOUNDS) == len(ROWS)  # one row each


def test_the_defaults_pass_and_each_row_reads_its_setting() -> None:
    assert [m for m in run_checks(tags=[SETTINGS_TAG]) if m.is_serious()] == []
    for row in SETTING_BOUNDS:
        value = bound_value(row)
        assert isinstance(value, float if row.real else int), (row, value)
        assert row.why, row
        assert row.maximum is None or row.minimum < row.maximum, row
        assert not row.above or row.real, row  # an integer's least value is written as it is


def set_bound_setting(settings: Any, row: SettingBound, value: float) -> None:
    """Set ``row``'s setting where settings keeps it (a queue's time limits inside TASK_TIME_LIMITS_S)."""
    name, *keys = (row.setting or row.variable).split(".")
    if not keys:
        setattr(settings, name, value)
        return
    assert name == "TASK_TIME_LIMITS_S", row  # the one nested setting set here (DATABASES: see below)
    queue, index = keys
    limits = dict(settings.TASK_TIME_LIMITS_S)
    pair = list(limits[queue])
    pair[int(index)] = value
    limits[queue] = tuple(pair)
    settings.TASK_TIME_LIMITS_S = limits


def _bounds_errors() -> list[tuple[str, str, str]]:
    """The bounds' errors only: a value within its own bounds may still be out of order with another's
    (TRANSFORMERS_MAX_CONTEXT_TOKENS=1 below twice VLM_MAX_NEW_TOKENS: workbench.E006, tests/workbench/test_setting_orders.py)."""
    found = [(m.id or "", m.msg, m.hint or "") for m in run_checks(tags=[SETTINGS_TAG]) if m.is_serious()]
    return [error for error in found if error[0] == "workbench.E005"]


def _least(row: SettingBound) -> float:
    """The least value the row allows (a thousandth above an excluded minimum)."""
    return row.minimum + 0.001 if row.above else row.minimum


# (variable, a value out of range): below each row's minimum (the minimum itself where it is excluded), and above its
# maximum where it has one.
OUT_OF_RANGE: list[tuple[str, float]] = (
    [
        (row.variable, row.minimum - 1)
        for row in SETTING_BOUNDS
        if not row.above and not row.setting.startswith("DATABASES.")
    ]
    + [(row.variable, float(row.minimum)) for row in SETTING_BOUNDS if row.above]
    + [(row.variable, row.maximum + (0.5 if row.real else 1)) for row in SETTING_BOUNDS if row.maximum is not None]
)


@pytest.mark.parametrize(("variable", "value"), OUT_OF_RANGE, ids=[f"{v}={n}" for v, n in OUT_OF_RANGE])
def test_a_value_out_of_range_is_an_error_naming_the_variable_the_value_and_the_range(
    settings: Any, variable: str, value: float
) -> None:
    row = ROWS[variable]
    set_bound_setting(settings, row, _least(row))  # the bound itself is allowed (0 where 0 is "off"), or just above it
    assert _bounds_errors() == []
    if row.maximum is not None:
        set_bound_setting(settings, row, row.maximum)
        assert _bounds_errors() == []
    set_bound_setting(settings, row, value)
    allowed = f"{row.minimum} to {row.maximum}" if row.maximum is not None else f"{row.minimum} or more"
    if row.above:
        allowed = f"more than {row.minimum}" + (f", up to {row.maximum}" if row.maximum is not None else "")
    errors = _bounds_errors()
    assert [(i, msg) for i, msg, _ in errors] == [
        ("workbench.E005", f"{variable}={value!r} is out of range: allowed {allowed} ({row.why}).")
    ]
    assert variable in errors[0][2]  # the hint says which variable to change


def test_a_fraction_a_timeout_and_a_threshold_as_an_operator_gets_them_wrong(settings: Any) -> None:
    settings.VLLM_GPU_MEMORY_UTILIZATION = 85.0  # a percent
    settings.MEDIA_S3_CONNECT_TIMEOUT = 0.0  # "no timeout" to the operator; botocore fails every connection
    settings.CASCADE_ESCALATE_ENTROPY = float("nan")  # compares false: nothing escalated, nothing kept
    settings.WEBHOOK_TIMEOUT_SECONDS = float("inf")
    settings.TRAINING_GATE_MIN_GAIN = -0.05  # a worse candidate passes the release gate
    assert [msg for _, msg, _ in _bounds_errors()] == [
        "MEDIA_S3_CONNECT_TIMEOUT=0.0 is out of range: allowed more than 0 (seconds to connect to the store: at 0 no "
        "request is sent).",
        "VLLM_GPU_MEMORY_UTILIZATION=85.0 is out of range: allowed more than 0, up to 1 (the GPU memory vLLM's engine "
        "takes, a fraction: 0.85, not 85).",
        "CASCADE_ESCALATE_ENTROPY=nan is out of range: allowed 0 to 1 (a normalised entropy: 0 escalates all but the "
        "certain, 1 none).",
        "WEBHOOK_TIMEOUT_SECONDS=inf is out of range: allowed more than 0 (seconds a delivery waits: at 0 every "
        "delivery fails).",
        "TRAINING_GATE_MIN_GAIN=-0.05 is out of range: allowed 0 or more (0: strictly better; below, a worse candidate "
        "passes the gate).",
    ]
    settings.VLLM_GPU_MEMORY_UTILIZATION = 1  # an integer where a float is read: the same number
    settings.MEDIA_S3_CONNECT_TIMEOUT = 0.5
    settings.CASCADE_ESCALATE_ENTROPY = 0.0  # 0 here is a meaning: escalate all but the certain
    settings.WEBHOOK_TIMEOUT_SECONDS = 30
    settings.TRAINING_GATE_MIN_GAIN = 0.0
    assert _bounds_errors() == []
    assert "out of range" in bound_refusal(ROWS["REVIEW_LEASE_SECONDS"], 900.0)  # an integer setting takes no float
    assert bound_allowed(ROWS["KEYFRAME_FPS"]) == "more than 0, up to 120"


def test_zero_is_allowed_where_it_means_off_and_refused_where_it_would_refuse_everything(settings: Any) -> None:
    settings.MAX_QUEUED_GPU_JOBS = 0  # no cap
    settings.SOLO_WORKER_MAX_MEMORY_MB = 0  # never restart
    settings.WEB_TIMEOUT = 0  # gunicorn: no timeout
    set_bound_setting(settings, ROWS["MEDIA_TASK_TIME_LIMIT_S"], 0)  # no limit
    assert _bounds_errors() == []
    settings.WORKBENCH_UPLOAD_MAX_BYTES = 0
    settings.REVIEW_LEASE_SECONDS = 0
    assert [msg.split(" is ")[0] for _, msg, _ in _bounds_errors()] == [
        "WORKBENCH_UPLOAD_MAX_BYTES=0",
        "REVIEW_LEASE_SECONDS=0",
    ]


def test_the_database_connection_age_is_read_where_django_keeps_it() -> None:
    """Not overridden here (a changed DATABASES would touch the test database's connection): the row reads
    DATABASES['default']['CONN_MAX_AGE'], and None (a URL's unlimited age) is no error."""
    row = ROWS["DATABASE_CONN_MAX_AGE"]
    assert row.setting == "DATABASES.default.CONN_MAX_AGE"
    assert isinstance(bound_value(row), int)
    assert bound_refusal(row, 0) == bound_refusal(row, None) == ""
    assert bound_refusal(row, -1) == (
        "DATABASE_CONN_MAX_AGE=-1 is out of range: allowed 0 or more (0: a connection per request)."
    )
    assert "out of range" in bound_refusal(ROWS["REVIEW_LEASE_SECONDS"], "900")  # not a number at all


def test_manage_py_check_and_a_worker_refuse_it(settings: Any) -> None:
    from celery import signals

    settings.CASCADE_RETRAIN_AFTER_LABELS = 0
    with pytest.raises(SystemCheckError, match=r"workbench\.E005\) CASCADE_RETRAIN_AFTER_LABELS=0 is out of range"):
        call_command("check", verbosity=0)
    with pytest.raises(SystemExit, match=r"workbench\.E005\) CASCADE_RETRAIN_AFTER_LABELS=0 is out of range"):
        signals.worker_init.send(sender=None)


def test_the_environment_variable_is_refused_as_set_not_clamped() -> None:
    """From the environment, as a deployment sets it: CSP_REPORT_RETENTION_DAYS=0 and TAG2COT_OPEN_LIMIT=0 were read
    as 1 without a word; the per-child memory limit in MB is checked as set, not as Celery's KiB; a float as
    django-environ reads it ("85" is 85.0)."""
    script = "import django; django.setup(); from workbench.checks import settings_refusal; print(settings_refusal())"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "CSP_REPORT_RETENTION_DAYS": "0",
        "TAG2COT_OPEN_LIMIT": "0",
        "WORKER_MAX_MEMORY_PER_CHILD_MB": "-1",
        "OCR_CHANGE_DISTANCE": "300",
        "VLLM_GPU_MEMORY_UTILIZATION": "85",
        "MEDIA_S3_READ_TIMEOUT": "0",
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    said = [line.split(" is out of range")[0] for line in out.stdout.splitlines() if "workbench.E005" in line]
    assert said == [
        "?: (workbench.E005) WORKER_MAX_MEMORY_PER_CHILD_MB=-1",
        "?: (workbench.E005) CSP_REPORT_RETENTION_DAYS=0",
        "?: (workbench.E005) OCR_CHANGE_DISTANCE=300",
        "?: (workbench.E005) TAG2COT_OPEN_LIMIT=0",
        "?: (workbench.E005) MEDIA_S3_READ_TIMEOUT=0.0",
        "?: (workbench.E005) VLLM_GPU_MEMORY_UTILIZATION=85.0",
    ]


def test_a_target_accuracy_a_retraining_would_refuse_is_refused_at_start(settings: Any) -> None:
    """A stage-1 retraining refuses a target accuracy under 0.5 (``stage1.routing``): allowed at start (the row's
    minimum was 0), every retraining failed hours later. The row and the retraining's rule agree now."""
    settings.CASCADE_TARGET_ACCURACY = 0.2
    assert [msg for _, msg, _ in _bounds_errors()] == [
        "CASCADE_TARGET_ACCURACY=0.2 is out of range: allowed 0.5 to 1 (a fraction: 0.85, not 85; a binary guess is "
        "right half the time)."
    ]
    settings.CASCADE_TARGET_ACCURACY = 0.5
    assert _bounds_errors() == []
