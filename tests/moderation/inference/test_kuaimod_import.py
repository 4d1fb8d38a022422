from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from moderation.inference.kuaimod import kuaimod_import
from moderation.labels.models import ItemLabel
from moderation.media.models import Video
from tests.moderation.inference.kuaimod_samples import kuaimod_line


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_creates_text_only_videos_with_labels_and_is_idempotent(db, tmp_path, policy_version) -> None:
    path = _write(
        tmp_path / "k.jsonl",
        [
            kuaimod_line("001", "引导私下交易", "加微信私聊", ocr="扫码|加我", asr="加我微信"),
            kuaimod_line("002", "正向", "null", ocr="红烧肉做法"),
        ],
    )

    first = kuaimod_import(path=path)
    second = kuaimod_import(path=path)

    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert Video.objects.count() == 2
    video = Video.objects.get(external_id="kuaimod:001")
    assert video.source == Video.Source.KUAIMOD
    assert video.status == Video.Status.READY
    assert not video.file
    assert (video.title, video.ocr_text, video.asr_text) == ("加微信私聊", "扫码|加我", "加我微信")
    assert Video.objects.get(external_id="kuaimod:002").title == ""  # "null" means no title
    assert video.sampled_frames == 1  # the one image the line lists: stage 1's frame signal
    label = ItemLabel.objects.get(video=video)
    assert (label.label, label.source, label.policy_version) == ("引导私下交易", "import", policy_version)


def test_reimport_of_an_edited_line_updates_video_and_label(db, tmp_path) -> None:
    path = tmp_path / "k.jsonl"
    kuaimod_import(path=_write(path, [kuaimod_line("007", "正向", "old title")]))
    report = kuaimod_import(path=_write(path, [kuaimod_line("007", "色情低俗", "new title")]))

    assert report.updated == 1
    video = Video.objects.get(external_id="kuaimod:007")
    assert video.title == "new title"
    assert video.labels.get().label == "色情低俗"


def test_bad_lines_are_reported_by_number_and_do_not_stop_the_batch(db, tmp_path) -> None:
    path = _write(
        tmp_path / "k.jsonl",
        [
            kuaimod_line("001", "正向", "ok one"),
            "{not json",
            '["a list"]',
            '{"tag": "正向", "title": "no pid"}',
            kuaimod_line("005", "不存在的标签", "unknown tag"),
            '{"pid": "006", "tag": "正向", "title": 42}',
            kuaimod_line("001", "正向", "duplicate pid"),
            kuaimod_line("008", "违法犯罪", "ok two"),
            '{"pid": "009", "tag": "正向", "title": "t", "images": "009_0.jpg"}',
        ],
    )

    report = kuaimod_import(path=path)

    assert report.created == 2
    assert [p.line for p in report.problems] == [2, 3, 4, 5, 6, 7, 9]
    reasons = {p.line: p.reason for p in report.problems}
    assert "not valid JSON" in reasons[2]
    assert "pid" in reasons[4]
    assert "不存在的标签" in reasons[5]
    assert "title" in reasons[6]
    assert "duplicate" in reasons[7]
    assert "images" in reasons[9] and "list" in reasons[9]
    assert report.unknown_tags == {"不存在的标签": 1}
    assert set(Video.objects.values_list("external_id", flat=True)) == {"kuaimod:001", "kuaimod:008"}


def test_import_command_prints_counts_and_problems(db, tmp_path) -> None:
    path = _write(tmp_path / "k.jsonl", [kuaimod_line("001", "正向", "a"), "garbage"])
    out, err = StringIO(), StringIO()
    call_command("import_kuaimod", str(path), stdout=out, stderr=err)
    assert "1 created" in out.getvalue()
    assert "line 2:" in err.getvalue()


def test_nul_characters_and_hostile_json_in_a_file_cost_nothing_but_their_line(db, tmp_path) -> None:
    path = _write(
        tmp_path / "k.jsonl",
        [
            '{"pid": "001", "tag": "正向", "title": "a\\u0000b", "OCR": "x\\u0000", "ASR": ""}',
            "[" * 50_000 + "]" * 50_000,
            '{"pid": ' + "9" * 5000 + ', "tag": "正向"}',
            kuaimod_line("004", "违法犯罪", "ok"),
        ],
    )

    report = kuaimod_import(path=path)

    assert report.created == 2 and [p.line for p in report.problems] == [2, 3]
    video = Video.objects.get(external_id="kuaimod:001")
    assert (video.title, video.ocr_text) == ("a\ufffdb", "x\ufffd")


def test_import_with_decide_routes_the_records_so_reviewers_and_labelers_get_them(
    db, tmp_path, policy_version, make_user, django_capture_on_commit_callbacks
) -> None:
    """An imported record has no uploader and no decision, so it is not routed: only admins see it
    (``video_open_to_q``), for evaluation and training. ``--decide`` queues the serving model's decision, as for an
    upload; routing then opens each record to the queues' reviewers and labelers, so a labeler can correct its
    reasoning. Without it the import queues nothing, and a labeler sees none of the records."""
    from django.test import Client
    from django.urls import reverse

    from moderation.inference.tasks import run_inference
    from moderation.models import Decision

    path = _write(
        tmp_path / "k.jsonl",
        [
            kuaimod_line("001", "引导私下交易", "加微信私聊", ocr="扫码|加我", asr="加我微信"),
            kuaimod_line("002", "正向", "红烧肉做法"),
        ],
    )
    labeler = Client()
    labeler.force_login(make_user("labeler"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("import_kuaimod", str(path), stdout=StringIO())
    assert callbacks == []
    assert labeler.get("/api/labels/").json()["results"] == []  # not decided: admins only

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("import_kuaimod", str(path), "--decide", stdout=out)
    videos = list(Video.objects.order_by("pk").values_list("pk", flat=True))
    assert [(cb.args[0], cb.args[2]) for cb in callbacks] == [
        ("moderation.inference.tasks.run_inference", [pk]) for pk in videos
    ]
    assert "queued 2 records for the model's decision" in out.getvalue()
    for pk in videos:
        run_inference(pk)  # what the infer worker does with each

    decision = Decision.objects.get(video__external_id="kuaimod:001")
    assert decision.review_tasks.exists()  # routed into a review queue
    assert {row["external_id"] for row in labeler.get("/api/labels/").json()["results"]} == {
        "kuaimod:001",
        "kuaimod:002",
    }
    page = labeler.get(reverse("annotation:correction_edit", args=[decision.pk]))
    assert page.status_code == 200 and "加我微信" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("import_kuaimod", str(path), "--decide", stdout=StringIO())
    assert callbacks == []  # decided already: nothing queued twice


def test_import_with_decide_is_refused_when_no_policy_decides_new_videos(db, tmp_path) -> None:
    from django.core.management.base import CommandError

    path = _write(tmp_path / "k.jsonl", [kuaimod_line("001", "正向", "红烧肉做法")])
    with pytest.raises(CommandError, match="No policy applies to new videos"):
        call_command("import_kuaimod", str(path), "--decide", stdout=StringIO())
    assert not Video.objects.exists()


def test_an_imported_title_is_stored_without_bidi_overrides(db, tmp_path) -> None:
    kuaimod_import(path=_write(tmp_path / "k.jsonl", [kuaimod_line("011", "正向", "便宜\u202e手机\u202c")]))
    assert Video.objects.get(external_id="kuaimod:011").title == "便宜手机"  # shown as it reads, not reordered
