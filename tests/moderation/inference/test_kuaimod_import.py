from __future__ import annotations

from io import StringIO
from pathlib import Path

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
