"""Pass 7: an adversarial pass over what the session of 2026-12-05 (14:15 UTC on) added: the CSP report collector,
the training API, the tags panel's Try again, integration folders, policy History and kept impact previews, the
relative-time helper and the pagers. Each test below is a finding that was a 500 or a wrong answer, and its fix.
What was probed and found sound is listed in /work/shots/hadv18/FINDINGS.md."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
import uuid
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from moderation.inference.services import model_version_serving
from tests.training.conftest import (  # noqa: F401 - fixtures used below
    dataset,
    gold_model,
    override_review,
    training_dirs,
)
from training.evaluation import eval_set_key, evaluation_file_digest
from training.models import EvaluationRun, TrainingJob
from workbench import csp_reports, timewords
from workbench.models import CspViolation
from workbench.tokens import api_token_issue

pytestmark = pytest.mark.django_db

CSP = "/csp-report/"
JOBS, EVALUATIONS = "/api/training/jobs/", "/api/training/evaluations/"
NO_SUCH_HOME = "~no-such-user-pass7/file"


def _address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _script(make_user, role: str = "admin") -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=make_user(role)).key}")
    return client


def test_a_csp_report_whose_page_address_is_no_url_is_kept_not_a_500() -> None:
    """``urlsplit`` refuses ``http://[x`` (an unclosed IPv6 host) with a ValueError: anyone could make the open
    collector answer 500, in either report shape, as often as its rate allowed."""
    legacy = {"csp-report": {"document-uri": "http://[x/a", "blocked-uri": "inline", "effective-directive": "img-src"}}
    batch = [
        {
            "type": "csp-violation",
            "body": {"effectiveDirective": "img-src", "blockedURL": "inline", "documentURL": "https://[::1"},
        }
    ]
    client = Client(raise_request_exception=False)
    for body, kind in ((legacy, "application/csp-report"), (batch, "application/reports+json")):
        response = client.post(CSP, json.dumps(body).encode(), content_type=kind, REMOTE_ADDR=_address())
        assert response.status_code == 204, (kind, response.status_code)
    row = CspViolation.objects.get()
    assert (row.directive, row.document_path, row.count) == ("img-src", "", 2)


_URLISH = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, host, rest: f"{scheme}{host}{rest}",
        st.sampled_from(["http://", "https://", "ws://", "blob:", "data:", "", "//", "http:///"]),
        st.sampled_from(["[", "[::1", "[::1]", "a:99999", "a:-1", "u:p@h", "h", "%zz", ""]),
        st.text(max_size=20),
    ),
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@example(document="http://[x/a", blocked="inline", directive="img-src")  # urlsplit's ValueError: was a 500
@hypothesis_settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(document=_URLISH, blocked=_URLISH, directive=st.one_of(_URLISH, st.sampled_from(["img-src", "script-src a"])))
def test_the_csp_reader_answers_any_report_with_violations_or_a_refusal(document, blocked, directive) -> None:  # type: ignore[no-untyped-def]
    """What a report names is anyone's to write: whatever its page, blocked URI and directive, the reader keeps a
    violation or refuses the report in words (``CspReportRefused``), in either shape, and keeps storable text."""
    legacy = {"csp-report": {"document-uri": document, "blocked-uri": blocked, "effective-directive": directive}}
    batch = [
        {
            "type": "csp-violation",
            "body": {"documentURL": document, "blockedURL": blocked, "effectiveDirective": directive},
        }
    ]
    for body, kind in ((legacy, "application/csp-report"), (batch, csp_reports.REPORTING_API_TYPE)):
        try:
            found = csp_reports.csp_reports_read(body=json.dumps(body).encode(), kind=kind)
        except csp_reports.CspReportRefused:
            continue
        for key in found:
            assert len(key.blocked) <= 300 and len(key.document_path) <= 300 and "\x00" not in key.blocked


def test_a_csp_rows_count_stops_at_the_columns_largest_value() -> None:
    """The count was added without bound: at 2,147,483,647 (an integer column's largest) every further report of that
    kind was a 500 ("integer out of range"). The overflow row, which takes every made-up kind past the day's row
    limit, is the one a flood from many addresses fills first."""
    top = csp_reports.CSP_VIOLATION_COUNT_MAX
    CspViolation.objects.create(
        day=timezone.now().date(), directive="img-src", blocked="inline", document_path="/x/", count=top - 1
    )
    report = {"csp-report": {"document-uri": "http://t/x/", "blocked-uri": "inline", "effective-directive": "img-src"}}
    client = Client(raise_request_exception=False)
    for _ in range(2):
        body = json.dumps(report).encode()
        response = client.post(CSP, body, content_type="application/csp-report", REMOTE_ADDR=_address())
        assert response.status_code == 204, response.status_code
    assert CspViolation.objects.get().count == top


def test_past_the_days_row_limit_made_up_directives_cannot_add_rows(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past the day's row limit a new kind was folded into one row *per directive*, and the directive is anyone's to
    write: a made-up directive per report made a row each (1,000 rows from 20 requests with the limit at 3). And the
    limit was read once per body, so one body of 50 new kinds made 50 rows past it."""
    monkeypatch.setattr(csp_reports, "CSP_VIOLATION_ROWS_PER_DAY", 3)
    client = Client(raise_request_exception=False)
    for n in range(3):
        body = [
            {
                "type": "csp-violation",
                "body": {"effectiveDirective": f"made-up-{n}-{k}", "blockedURL": f"https://x/{k}"},
            }
            for k in range(50)
        ]
        response = client.post(CSP, json.dumps(body), content_type="application/reports+json", REMOTE_ADDR=_address())
        assert response.status_code == 204, response.status_code
    real = [{"type": "csp-violation", "body": {"effectiveDirective": "img-src", "blockedURL": "https://y/z.png"}}]
    client.post(CSP, json.dumps(real), content_type="application/reports+json", REMOTE_ADDR=_address())

    rows = dict(CspViolation.objects.values_list("directive", "count").filter(blocked=csp_reports.OVERFLOW_BLOCKED))
    assert rows == {csp_reports.OVERFLOW_DIRECTIVE: 147, "img-src": 1}  # a directive a browser reports keeps its row
    assert CspViolation.objects.count() == 3 + 2


def test_an_ipv6_client_is_rated_by_its_64_not_per_address(settings) -> None:  # type: ignore[no-untyped-def]
    """Counted per address, one IPv6 host (given a /64) sent each report from a new address and met no rate."""
    settings.CSP_REPORT_RATE_LIMIT = "2/min"
    net = f"2001:db8:{uuid.uuid4().int % 65536:x}:{uuid.uuid4().int % 65536:x}"
    report = {"csp-report": {"document-uri": "http://t/x/", "blocked-uri": "inline", "effective-directive": "img-src"}}
    client = Client(raise_request_exception=False)
    answers = [
        client.post(
            CSP, json.dumps(report), content_type="application/csp-report", REMOTE_ADDR=f"{net}::{n}"
        ).status_code
        for n in range(1, 5)
    ]
    assert answers == [204, 204, 429, 429]
    assert csp_reports.csp_report_client("::ffff:10.1.2.3") == "10.1.2.3"
    assert csp_reports.csp_report_client("10.1.2.3") == "10.1.2.3"


def test_a_server_path_naming_an_unknown_users_home_is_refused_in_words(
    make_user,
    settings,
    tmp_path,
    policy_version,
    dataset,  # noqa: F811 - the form is drawn once a dataset exists
) -> None:  # type: ignore[no-untyped-def]
    """``~someone/…`` for a user the server does not have made pathlib raise RuntimeError ("Could not determine home
    directory"): a 500 from the video API's ``path`` (any uploader or platform), the evaluation file, and a training
    job's base model, guide model or adapter (the API and the training screen's form)."""
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    moderator = _script(make_user, "moderator")
    video = moderator.post("/api/videos/", {"path": NO_SUCH_HOME + ".mp4"}, format="json")
    assert video.status_code == 400 and "outside the import folders" in video.json()["detail"], video.content[:300]

    admin = _script(make_user)
    body = {"model_version": model_version_serving().pk, "eval_set": "kuaimod_file", "file_path": NO_SUCH_HOME}
    evaluation = admin.post(EVALUATIONS, body, format="json")
    assert evaluation.status_code == 400 and "outside the import folders" in evaluation.json()["detail"]

    job = admin.post(JOBS, {"dataset": 999999, "base_model": NO_SUCH_HOME}, format="json")
    assert job.status_code == 400, job.status_code
    assert "home folder of a user this server does not have" in job.json()["base_model"][0]

    page = Client(raise_request_exception=False)
    page.force_login(make_user("admin"))
    form = page.post("/training/jobs/start/", {"dataset": dataset.pk, "base_model": NO_SUCH_HOME, "max_steps": "2"})
    assert form.status_code == 400 and "home folder of a user this server does not have" in form.content.decode()
    assert not TrainingJob.objects.exists() and not EvaluationRun.objects.exists()


def test_a_start_with_no_active_policy_version_is_a_400_saying_so(make_user) -> None:  # type: ignore[no-untyped-def]
    """Before ``manage.py bootstrap`` (or with every version of the policy retired) the start services raise the
    policies' ModerationError, which the API and the form did not catch: a 500 for an admin's script or click."""
    model = model_version_serving().pk
    api = _script(make_user).post(EVALUATIONS, {"model_version": model}, format="json")
    assert api.status_code == 400 and "has no active version" in api.json()["detail"], api.status_code
    page = Client(raise_request_exception=False)
    page.force_login(make_user("admin"))
    form = page.post("/training/evaluations/start/", {"model_version": model, "eval_set": "gold"})
    assert form.status_code == 400 and "has no active version" in form.content.decode()
    assert not EvaluationRun.objects.exists()


def test_a_gold_set_evaluation_keeps_no_file_and_joins_the_open_run(gold_model, policy_version, make_user) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The gold set reads no file, but a ``file_path`` sent with it was kept on the run (``/etc/passwd`` shown as
    what was evaluated) and made each start a new run instead of the open one: the same model measured again."""
    script = _script(make_user)
    first = script.post(EVALUATIONS, {"model_version": gold_model.pk, "file_path": "a"}, format="json")
    again = script.post(EVALUATIONS, {"model_version": gold_model.pk, "file_path": "/etc/passwd"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200), (first.content[:200], again.content[:200])
    assert again.json()["id"] == first.json()["id"] and again.json()["file_path"] == ""
    assert EvaluationRun.objects.get().file_path == ""


def test_a_model_folder_whose_symlinks_loop_is_refused_in_words(make_user, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A symlink loop inside the model folders made ``Path.resolve`` raise RuntimeError: a 500 on a job's start."""
    settings.MODELS_DIR = tmp_path
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    job = _script(make_user).post(JOBS, {"dataset": 999999, "base_model": str(tmp_path / "a")}, format="json")
    assert job.status_code == 400 and "symlinks lead round in a loop" in job.json()["base_model"][0]


def test_a_model_is_never_loaded_from_a_platforms_import_folder(make_user, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Base, guide and adapter folders were taken anywhere in MEDIA_IMPORT_ROOTS, integrations' folders included: a
    platform writes its own folder, and a pickled checkpoint runs what it holds when the GPU worker loads it (the
    evaluation file was already kept out of those folders; model folders were not)."""
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    platform, own = tmp_path / "integration-3" / "model", tmp_path / "models" / "own"
    platform.mkdir(parents=True)
    own.mkdir(parents=True)
    (tmp_path / "models" / "link").symlink_to(platform)
    script = _script(make_user)
    for named in (platform, tmp_path / "models" / "link"):
        for body in ({"base_model": str(named)}, {"params": {"guide_base_model": str(named)}}):
            response = script.post(JOBS, {"dataset": 999999, **body}, format="json")
            assert response.status_code == 400 and "never loaded from a platform's files" in str(response.json())
    kept = script.post(JOBS, {"dataset": 999999, "base_model": str(own)}, format="json")
    assert kept.status_code == 400 and set(kept.json()) == {"dataset"}  # the folder was taken; the dataset is unknown


@pytest.mark.parametrize(
    ("params", "said"),
    [
        # JSON's 1e400 is infinity: int() overflowed. Refused by the API's JSON parser since pass 11, naming it.
        ('{"max_steps": 1e400}', "params.max_steps is a number too large to read"),
        ('{"lora_target_modules": 5}', "lora_target_modules must name at least one module"),  # not iterable
        ('{"lora_target_modules": true}', "lora_target_modules must name at least one module"),
        ('{"seed": 1099511627776}', "seed must be between 0 and 2147483647."),  # was "2.14748e+09", below the bound
    ],
)
def test_a_training_apis_odd_parameters_are_a_400_naming_them(dataset, make_user, params: str, said: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    response = _script(make_user).post(
        JOBS, f'{{"dataset": {dataset.pk}, "params": {params}}}', content_type="application/json"
    )
    assert response.status_code == 400, (response.status_code, response.content[:200])
    assert said in response.json()["detail"]
    assert not TrainingJob.objects.exists()


def test_relative_times_take_naive_times_say_18_months_and_a_time_ahead_as_ahead() -> None:
    """Naive times (built by hand, not read from the database) were a TypeError against the aware clock; 533 to 547
    days ahead read "in about 1 years"; a time days ahead of the clock read "just now"."""
    now = timezone.now()
    naive = timezone.make_naive(now - timedelta(minutes=5))
    assert timewords.ago_text(naive, now=now) == "5\xa0minutes ago"
    assert timewords.elapsed_text(naive, now=now) == "5\xa0minutes"
    assert timewords.expires_in_text(naive + timedelta(days=3), now=now) == "in 3 days"
    for days in range(530, 560):
        said = timewords.expires_in_text(now + timedelta(days=days), now=now)
        assert "1 years" not in said and said in ("in about 17 months", "in about 18 months", "in about 2 years"), days
    assert timewords.expires_in_text(datetime(2026, 1, 1), now=datetime(2025, 12, 31)) == "tomorrow"
    # A time ahead of the clock (another machine's clock ahead) said "just now" / "under a minute" however far off.
    assert timewords.ago_text(now + timedelta(days=5), now=now) == "in 5\xa0days"
    assert timewords.elapsed_text(now + timedelta(hours=2), now=now) == "in 2\xa0hours"
    assert timewords.ago_text(now + timedelta(seconds=30), now=now) == "just now"  # a little skew stays "just now"
    assert timewords.elapsed_text(now + timedelta(seconds=30), now=now) == "under a minute"


def test_an_evaluation_files_key_is_hashed_without_reading_the_file_into_memory(tmp_path) -> None:
    """The file named for an evaluation was read whole (``read_bytes``) to hash it, in the web request: a large
    KuaiMod file took as much of the web process's memory."""
    big = tmp_path / "eval.jsonl"
    chunk = b'{"id": "x"}\n' * 100_000
    with big.open("wb") as fh:
        for _ in range(16):
            fh.write(chunk)
    policy = type("P", (), {"pk": 7})()
    tracemalloc.start()
    try:
        # Hashed by the evaluation's worker now (tests/training/test_eval_file_hashed_by_worker.py), in chunks still.
        digest = evaluation_file_digest(big)
        key = eval_set_key(eval_set="kuaimod_file", policy_version=policy, file_path=str(big), digest=digest)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert key == f"kuaimod_file:eval.jsonl:{hashlib.sha256(big.read_bytes()).hexdigest()[:16]}:policy_version=7"
    assert peak < big.stat().st_size // 4, (peak, big.stat().st_size)
