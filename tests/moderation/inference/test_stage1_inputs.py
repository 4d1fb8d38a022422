"""One function builds stage 1's input: a video and its KuaiMod-record twin read the same."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.inference.kuaimod import kuaimod_bundle, kuaimod_import, kuaimod_parse_line, kuaimod_read
from moderation.inference.services import content_bundle_for
from moderation.inference.stage1.inputs import TITLE_MAX_CHARS, stage1_input
from moderation.inference.stage1.model import stage1_fit
from moderation.media.models import Video
from tests.factories import SegmentFactory, VideoFactory
from tests.moderation.inference.kuaimod_samples import kuaimod_line, write_split

LONG_TITLE = "加微信私聊 " * 120  # 720 characters: longer than a video's title may be


def test_an_imported_record_and_its_record_give_identical_input_and_features(db, tmp_path) -> None:
    path = tmp_path / "twin.jsonl"
    line = kuaimod_line("900", "引导私下交易", LONG_TITLE, ocr="扫码加微信| 私聊 |||低价", asr="加我微信|便宜出")
    path.write_text(line + "\n", encoding="utf-8")
    kuaimod_import(path=path)
    [record] = kuaimod_read(path).records
    video = Video.objects.get(external_id=record.external_id)

    from_record = stage1_input(kuaimod_bundle(record))  # what evaluate reads
    from_video = stage1_input(content_bundle_for(video))  # what training and serving read

    assert from_video == from_record
    assert from_record.ocr == "扫码加微信\n私聊\n低价" and from_record.asr == "加我微信\n便宜出"
    assert len(from_record.title) <= TITLE_MAX_CHARS
    classifier = stage1_fit(*_training(tmp_path))
    assert np.array_equal(classifier.predict_proba([from_video]), classifier.predict_proba([from_record]))
    # The served bundle's own text once had " | " and " " joins; those would not be the same input.
    assert "|" not in from_video.ocr


def test_a_processed_video_reads_like_a_record_with_the_same_segments(db) -> None:
    video = VideoFactory(
        title="周末做蛋糕 #烘焙", ocr_text="第一步 | 打发奶油 | 好吃", sampled_frames=1
    )  # OCR joined with " | "
    for i, text in enumerate(["今天做蛋糕", "先打发奶油"]):
        SegmentFactory(video=video, index=i, start=i * 2.0, end=i * 2.0 + 2, text=text)
    record = kuaimod_parse_line(
        kuaimod_line("901", "正向", "周末做蛋糕 #烘焙", ocr="第一步|打发奶油|好吃", asr="今天做蛋糕|先打发奶油"),
        line=1,
    )

    assert stage1_input(content_bundle_for(video)) == stage1_input(kuaimod_bundle(record))


def _training(tmp_path):  # type: ignore[no-untyped-def]
    records = kuaimod_read(write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12))).records
    return [stage1_input(kuaimod_bundle(r)) for r in records], [r.tag for r in records]


@pytest.mark.parametrize("frames", [0, 9])
def test_the_frame_count_travels_with_the_input_but_is_not_a_default_feature(db, tmp_path, frames) -> None:
    items, labels = _training(tmp_path)
    classifier = stage1_fit(items, labels)
    probe = stage1_input(content_bundle_for(VideoFactory(title="加微信私聊", sampled_frames=frames or None)))
    assert probe.frames == frames
    base = classifier.predict_proba([stage1_input(content_bundle_for(VideoFactory(title="加微信私聊")))])
    assert np.array_equal(classifier.predict_proba([probe]), base)
