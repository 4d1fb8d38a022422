"""Quality of the media pipeline, measured on synthetic videos whose text and speech are known.

    .venv/bin/python bench/media_quality.py [--videos 4]

Used by ``bench/pipeline.py`` (which reports it beside the speed) and runnable alone. Each video has
a moving background (testsrc2) and known on-screen text drawn by ffmpeg at known places and times:

* a title line at the top (static), English or Chinese;
* subtitles at the bottom that change three times (the speech, chunked), English or Chinese;
* a sticker: a short line in the top-right corner, shown for a few seconds only;
* small text: a watermark line in the bottom-left corner, a third of the title's size;

and espeak-ng speech. After ``video_process`` it reads only what the pipeline stored (OcrBox rows,
TranscriptSegment rows), so the same file measures any version of the pipeline.

* ``ocr_char_recall``: for every text item, the characters of its text (NFKC, lowercase, no spaces
  or punctuation) found, as a multiset, in the OCR lines stored for frames inside the item's time
  window whose box centre lies inside the item's region; summed over items, divided by the item
  characters. Missing a subtitle because its frames were never read counts as missing.
* ``asr_wer``: word error rate of the stored transcript against the espeak-ng script (lowercase,
  punctuation removed, digits as espeak says them are not normalised: the scripts avoid them).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# The helpers beside it, also when imported as ``bench.media_quality``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@dataclass(frozen=True)
class TextItem:
    kind: str  # title, subtitle, sticker, small
    text: str
    start: float
    end: float
    region: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame


@dataclass(frozen=True)
class QualityVideo:
    name: str
    speech: str
    items: tuple[TextItem, ...]
    seconds: float


_SPEECH = (
    "Add me on WeChat for a private deal. Message me privately outside the app.",
    "This tea cures everything. It works for every illness and the effect is guaranteed.",
    "Today we cook a simple tomato soup. Chop the onions and simmer them slowly.",
    "We hiked to the lake this morning. The view from the top was beautiful.",
    "Need money fast? Send me your bank card number and I will transfer the loan tonight.",
    "My cat found the sunniest spot in the house and fell asleep again.",
)
_ZH_TITLES = (
    "加微信私聊优惠",
    "神奇草本茶包治百病",
    "番茄汤家常做法",
    "周末去山里徒步",
    "急用钱快速放款",
    "小猫午睡时间",
)
_ZH_SUBS = (
    ("加我微信", "私下交易更便宜", "不要在平台里聊"),
    ("这个茶什么病都能治", "百分之百有效", "保证见效"),
    ("今天做番茄汤", "先切洋葱", "小火慢炖二十分钟"),
    ("早上去湖边徒步", "山顶风景很美", "明天继续出发"),
    ("需要钱吗", "发我银行卡号", "今晚就放款"),
    ("我的猫找到阳光", "又睡着了", "晚安"),
)
_EN_TITLES = ("Cheap phones DM me", "Miracle herbal tea", "Easy tomato soup", "Weekend in the mountains",
              "Fast cash tonight", "Sleepy cat")  # fmt: skip
_STICKERS = ("VX: deal888", "限时特价", "Follow for more", "关注我", "Link in bio", "点赞收藏")
_SMALL = ("@shop_4821", "@茶叶小店", "@kitchen_daily", "@徒步日记", "@fastcash_99", "@猫咪日常")


def quality_videos(count: int, seconds: float = 20.0) -> list[QualityVideo]:
    """``count`` videos, alternating English and Chinese text; the same list every time."""
    videos = []
    for i in range(count):
        zh = i % 2 == 1
        j = i % len(_SPEECH)
        subs = _ZH_SUBS[j] if zh else _chunks(_SPEECH[j], 3)
        third = seconds / 3
        items = [TextItem("title", _ZH_TITLES[j] if zh else _EN_TITLES[j], 0, seconds, (0.0, 0.0, 1.0, 0.2))]
        items += [
            TextItem("subtitle", sub, k * third, (k + 1) * third, (0.0, 0.72, 1.0, 1.0)) for k, sub in enumerate(subs)
        ]
        items.append(TextItem("sticker", _STICKERS[j], seconds * 0.35, seconds * 0.6, (0.55, 0.18, 1.0, 0.4)))
        items.append(TextItem("small", _SMALL[j], 0, seconds, (0.0, 0.5, 0.45, 0.72)))
        videos.append(QualityVideo(f"q{i}-{'zh' if zh else 'en'}", _SPEECH[j], tuple(items), seconds))
    return videos


def _chunks(text: str, parts: int) -> list[str]:
    words = text.split()
    size = -(-len(words) // parts)
    return [" ".join(words[k : k + size]) for k in range(0, len(words), size)]


def _esc(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def render(video: QualityVideo, out: Path, size: tuple[int, int] = (640, 360)) -> Path:
    """The video as H.264 + AAC: moving background, the text items, espeak-ng speech padded to length."""
    width, height = size
    tmp = out.parent / f"{out.stem}-parts"
    tmp.mkdir(parents=True, exist_ok=True)
    wav = tmp / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), video.speech], check=True, capture_output=True)
    filters = []
    for n, item in enumerate(video.items):
        (tmp / f"t{n}.txt").write_text(item.text, encoding="utf-8")
        font = CJK_FONT if any("\u4e00" <= ch <= "\u9fff" for ch in item.text) else LATIN_FONT
        x0, y0, x1, y1 = item.region
        size_px = {"title": height // 14, "subtitle": height // 18, "sticker": height // 20, "small": height // 30}
        fs = size_px[item.kind]
        x = f"({x0}*w+({x1}-{x0})*w/2-text_w/2)"
        y = f"({y0}*h+({y1}-{y0})*h/2-text_h/2)"
        look = ":box=1:boxcolor=black@0.6:boxborderw=5" if item.kind != "small" else ":shadowx=1:shadowy=1"
        color = "yellow" if item.kind == "sticker" else "white"
        filters.append(
            f"drawtext=fontfile='{_esc(Path(font))}':textfile='{_esc(tmp / f't{n}.txt')}':x={x}:y={y}:fontsize={fs}"
            f":fontcolor={color}{look}:enable='between(t,{item.start:.2f},{item.end:.2f})'"
        )
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={video.seconds}", "-i", str(wav),
         "-filter_complex", f"[1:a]apad=whole_dur={video.seconds}[a]", "-map", "0:v", "-map", "[a]",
         "-vf", ",".join(filters), "-t", str(video.seconds),
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1",
         "-c:a", "aac", "-b:a", "64k", "-ar", "16000", "-ac", "1",
         "-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def _chars(text: str) -> Counter[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    return Counter(ch for ch in text if ch.isalnum())


_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words): word-level Levenshtein distance."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)], len(ref)


def measure(video_id: int, video: QualityVideo) -> dict[str, float | int]:
    """What the pipeline stored for one processed quality video, scored against what was drawn and said."""
    from moderation.media.models import Keyframe, OcrBox, TranscriptSegment

    keyframes = list(Keyframe.objects.filter(video_id=video_id))
    boxes = list(OcrBox.objects.filter(keyframe__video_id=video_id).select_related("keyframe"))
    found = total = 0
    per_kind: dict[str, list[int]] = {}
    for item in video.items:
        want = _chars(item.text)
        x0, y0, x1, y1 = item.region
        lines = {
            b.text
            for b in boxes
            if item.start - 0.5 <= b.keyframe.timestamp <= item.end + 0.5
            and x0 <= (b.x + b.w / 2) / b.keyframe.width <= x1
            and y0 <= (b.y + b.h / 2) / b.keyframe.height <= y1
        }
        got = _chars("".join(sorted(lines)))
        hit = sum(min(n, got[ch]) for ch, n in want.items())
        found, total = found + hit, total + sum(want.values())
        kind = per_kind.setdefault(item.kind, [0, 0])
        kind[0], kind[1] = kind[0] + hit, kind[1] + sum(want.values())
    transcript = " ".join(
        TranscriptSegment.objects.filter(video_id=video_id).order_by("index").values_list("text", flat=True)
    )
    edits, ref_words = word_errors(video.speech, transcript)
    return {
        "chars_found": found, "chars_total": total, "word_edits": edits, "ref_words": ref_words,
        "keyframes": len(keyframes), "ocr_frames": sum(1 for kf in keyframes if kf.ocr_done),
        "transcript_segments": TranscriptSegment.objects.filter(video_id=video_id).count(),
        **{f"chars_found_{k}": v[0] for k, v in per_kind.items()},
        **{f"chars_total_{k}": v[1] for k, v in per_kind.items()},
    }  # fmt: skip


def summarize(rows: list[dict[str, float | int]]) -> dict[str, float | int]:
    def total(key: str) -> float:
        return float(sum(r.get(key, 0) for r in rows))

    out: dict[str, float | int] = {
        "ocr_char_recall": round(total("chars_found") / max(1.0, total("chars_total")), 4),
        "asr_wer": round(total("word_edits") / max(1.0, total("ref_words")), 4),
        "keyframes": int(total("keyframes")),
        "ocr_frames": int(total("ocr_frames")),
        "transcript_segments": int(total("transcript_segments")),
    }
    for kind in ("title", "subtitle", "sticker", "small"):
        out[f"recall_{kind}"] = round(total(f"chars_found_{kind}") / max(1.0, total(f"chars_total_{kind}")), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=4)
    args = parser.parse_args()
    django_setup()
    from django.test.utils import setup_databases, teardown_databases

    from moderation.media.ingest import video_ingest
    from moderation.media.models import Video
    from moderation.media.pipeline import video_process
    from tests.factories import PolicyVersionFactory

    old = setup_databases(verbosity=0, interactive=False)
    try:
        PolicyVersionFactory()
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for video in quality_videos(args.videos):
                clip = render(video, Path(tmp) / f"{video.name}.mp4")
                pk = video_ingest(path=clip, title=video.name).pk
                video_process(video_id=pk)
                assert Video.objects.get(pk=pk).status == Video.Status.READY
                rows.append(measure(pk, video))
                print(video.name, rows[-1])
    finally:
        teardown_databases(old, verbosity=0)
    print(json.dumps(summarize(rows)))


if __name__ == "__main__":
    main()
