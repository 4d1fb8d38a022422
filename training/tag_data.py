"""Reviewers' tag events as a dataset (JSONL / Hugging Face), split like the SFT/DPO builders:
a video's reproduction cluster stays on one side (``split_for(split_group_for(video))``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moderation.tagging.models import TagEvent
from training.data import split_for, split_group_for


def tag_event_rows(*, eval_share: float = 0.0) -> list[dict[str, Any]]:
    """One row per event: the video's text, the tag, the reviewer's action and label (accept/add = 1,
    reject = 0), the candidate sources, ranker score and features, and whether the chip was pre-selected."""
    rows: list[dict[str, Any]] = []
    events = TagEvent.objects.select_related("video__repro_cluster", "tag", "reviewer").order_by("pk")
    for e in events:
        video = e.video
        rows.append(
            {
                "event_id": e.pk,
                "video_id": video.pk,
                "title": video.title,
                "text": " ".join(p for p in (video.description, video.ocr_text, video.asr_text) if p),
                "tag": e.tag.name,
                "tag_id": e.tag_id,
                "action": e.action,
                "label": int(e.action != TagEvent.Action.REJECT),
                "sources": list(e.sources),
                "score": e.score,
                "preselected": e.preselected,
                "features": e.features,
                "reviewer": e.reviewer.get_username(),
                "at": e.at.isoformat(),
                "split": split_for(split_group_for(video), eval_share),
            }
        )
    return rows


def tag_events_export(*, folder: Path, eval_share: float = 0.0, hf: bool = False) -> dict[str, int]:
    """Write ``train.jsonl`` (and ``eval.jsonl``) under ``folder``; with ``hf`` also a ``DatasetDict``
    folder ``hf/`` (``datasets`` is imported only here). Returns the row count per split."""
    rows = tag_event_rows(eval_share=eval_share)
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for split in sorted({r["split"] for r in rows} or {"train"}):
        part = [r for r in rows if r["split"] == split]
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps({**r, "features": json.dumps(r["features"])}, ensure_ascii=False) + "\n")
        counts[split] = len(part)
    if hf:
        from datasets import Dataset, DatasetDict

        DatasetDict(
            {
                split: Dataset.from_list(
                    [{**r, "features": json.dumps(r["features"])} for r in rows if r["split"] == split]
                )
                for split in counts
                if counts[split]
            }
        ).save_to_disk(str(folder / "hf"))
    return counts
