"""Label Studio round trip against a REAL Label Studio server (own virtualenv; started in the background
at collection by tests/conftest.py, see tests/labelstudio_server.py)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from annotation.labelstudio import (
    cot_as_text,
    cot_from_text,
    labelstudio_client,
    labelstudio_import_project,
)
from annotation.models import CotCorrection, LabelStudioImport
from moderation.labels.models import ItemLabel
from moderation.review.models import Review, ReviewQueue, ReviewTask
from tests.factories import DecisionFactory, SegmentFactory
from tests.labelstudio_server import TOKEN


def test_cot_text_round_trip():
    cot = [
        {"key": "analysis", "title": "Analysis", "text": "a"},
        {"key": "final_judgment", "title": "Final judgment", "text": "label: x"},
    ]
    text = cot_as_text(cot)
    assert cot_from_text(text, cot) == {"analysis": "a", "final_judgment": "label: x"}
    assert cot_from_text(text.replace("] a", "] changed\nover two lines"), cot)["analysis"] == "changed\nover two lines"


@pytest.mark.integration
@pytest.mark.django_db
def test_export_then_import_annotations_as_reviews_and_corrections(label_studio, policy_version, make_user):
    queue, _ = ReviewQueue.objects.get_or_create(slug="ls-export", defaults={"name": "LS export"})
    agree = DecisionFactory(policy_version=policy_version, label="正向")
    disagree = DecisionFactory(policy_version=policy_version, label="正向")
    SegmentFactory(video=disagree.video, text="add me on wechat to buy", start=1.5)
    for d in (agree, disagree):
        ReviewTask.objects.create(decision=d, queue=queue)
    client = labelstudio_client(url=label_studio, api_key=TOKEN)

    # Exported with the command an operator would run.
    importer = make_user("admin")
    out = io.StringIO()
    call_command(
        "labelstudio", "export", "--queue", "ls-export", "--url", label_studio, "--token", TOKEN,
        "--base-url", "http://workbench.test", "--as", importer.username, stdout=out,
    )  # fmt: skip
    match = re.search(r"Exported (\d+) items to Label Studio project (\d+)", out.getvalue())
    assert match, out.getvalue()
    n, project_id = int(match.group(1)), int(match.group(2))
    assert n == 2
    tasks = {t.data["decision_id"]: t for t in client.tasks.list(project=project_id, fields="all")}
    assert set(tasks) == {agree.pk, disagree.pk}
    exported = tasks[disagree.pk]
    assert "add me on wechat" in exported.data["transcript"]
    assert exported.data["video"].startswith("http://workbench.test/")
    [prediction] = exported.predictions
    values = {r["from_name"]: r["value"] for r in prediction.result}
    assert values["label"] == {"choices": ["正向"]} and "[analysis]" in values["cot"]["text"][0]
    project = client.projects.get(id=project_id)
    assert '<Choice value="引导私下交易"' in project.label_config and "<TextArea" in project.label_config
    assert '<Choices name="severity"' in project.label_config

    # Labelers work in Label Studio: one agrees with the model, one overrides it and rewrites a stage.
    client.annotations.create(id=tasks[agree.pk].id, result=prediction_like(agree, "正向", cot_as_text(agree.cot)))
    edited = cot_as_text(disagree.cot).replace("analysis text", "The speaker steers buyers to WeChat.")
    client.annotations.create(id=exported.id, result=prediction_like(disagree, "引导私下交易", edited, "high"))

    first = labelstudio_import_project(client=client, ls_url=label_studio, project_id=project_id, by=importer)
    assert first.imported == 2, first.outcomes
    assert Review.objects.get(decision=agree).verdict == Review.Verdict.APPROVE
    override = Review.objects.get(decision=disagree)
    assert override.verdict == Review.Verdict.OVERRIDE and override.label == "引导私下交易"
    assert override.severity == "high"
    assert "Label Studio annotation" in override.note
    assert ItemLabel.objects.get(video=disagree.video, source="review").label == "引导私下交易"
    correction = CotCorrection.objects.get(decision=disagree)
    assert correction.label == "引导私下交易" and correction.status == CotCorrection.Status.SUBMITTED
    assert [c["key"] for c in correction.diff] == ["analysis"]
    assert not CotCorrection.objects.filter(decision=agree).exists()

    out = io.StringIO()
    call_command(
        "labelstudio", "import", "--project", str(project_id), "--url", label_studio, "--token", TOKEN,
        "--as", importer.username, stdout=out,
    )  # fmt: skip
    assert "0 annotations imported, 2 already imported" in out.getvalue()
    assert Review.objects.count() == 2 and LabelStudioImport.objects.count() == 2
    assert CotCorrection.objects.get(decision=disagree).revision == 1


def prediction_like(decision, label: str, cot_text: str, severity: str = "") -> list[dict]:  # type: ignore[no-untyped-def]
    chosen = [{"from_name": "severity", "to_name": "transcript", "type": "choices", "value": {"choices": [severity]}}]
    return [
        {"from_name": "label", "to_name": "transcript", "type": "choices", "value": {"choices": [label]}},
        *(chosen if severity else []),
        {"from_name": "cot", "to_name": "transcript", "type": "textarea", "value": {"text": [cot_text]}},
    ]


def test_an_unreachable_or_refusing_label_studio_is_a_plain_error_not_a_traceback(make_user):  # type: ignore[no-untyped-def]
    """Without a server (or with a wrong token) the command died on httpx's ConnectError / the SDK's ApiError."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from django.core.management.base import CommandError

    make_user("labeler", username="ls-labeler")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(CommandError, match="Cannot reach Label Studio at .*Check --url"):
        call_command("labelstudio", "import", url=closed, token="t", project=1, username="ls-labeler")

    class Refuses(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b'{"detail": "Invalid token."}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(CommandError, match=r"refused the request \(HTTP 401\).*Invalid token.*Check --token"):
            call_command("labelstudio", "import", url=url, token="wrong", project=1, username="ls-labeler")
    finally:
        server.shutdown()
        server.server_close()
