"""Reviewers' tag events as a dataset (JSONL / Hugging Face), split like the SFT/DPO builders:
a video's reproduction cluster stays on one side (``split_for(split_group_for(video))``)."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User

from moderation.review.services import audit_event_record
from moderation.tagging.models import TagEvent, TagRanker, TagSet
from training.data import split_for, split_group_for
from training.errors import TrainingError

EVAL_SHARE_MAX = 0.9  # the most of the events a tag-events export holds out (the screen's field, the command)


def tag_event_rows(
    *,
    eval_share: float = 0.0,
    tag_ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per event: the video's text, the tag, the reviewer's action and label (accept/add = 1,
    reject = 0), the candidate sources, ranker score and features, which ranker ranked the suggestion
    (``ranked_by``: "tag-ranker v3" or "weighted-sum", empty for a tag found by search or an event from before
    it was recorded; ``ranker_version``: 3, or None), and whether the chip was pre-selected.
    Only events on ``tag_ids`` (None: any tag) made in ``[since, until)``."""
    rows: list[dict[str, Any]] = []
    logistic = TagRanker.Kind.LOGISTIC
    events = TagEvent.objects.select_related("video__repro_cluster", "tag", "reviewer", "ranker").order_by("pk")
    if tag_ids is not None:
        events = events.filter(tag_id__in=tag_ids)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
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
                "ranked_by": e.ranked_by,
                "ranker_version": e.ranker.version if e.ranker is not None and e.ranker.kind == logistic else None,
                "preselected": e.preselected,
                "features": e.features,
                "reviewer": e.reviewer.get_username(),
                "at": e.at.isoformat(),
                "split": split_for(split_group_for(video), eval_share),
            }
        )
    return rows


def tag_event_line(row: dict[str, Any]) -> str:
    """A row as one JSONL line (the features as a JSON string: their keys differ between rows)."""
    return json.dumps({**row, "features": json.dumps(row["features"])}, ensure_ascii=False)


def tag_events_export(
    *, folder: Path, eval_share: float = 0.0, hf: bool = False, rows: list[dict[str, Any]] | None = None
) -> dict[str, int]:
    """Write ``train.jsonl`` (and ``eval.jsonl``) under ``folder``; with ``hf`` also a ``DatasetDict``
    folder ``hf/`` (``datasets`` is imported only here). ``rows``: already chosen ones (default: every
    event). Returns the row count per split."""
    rows = tag_event_rows(eval_share=eval_share) if rows is None else rows
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for split in sorted({r["split"] for r in rows} or {"train"}):
        part = [r for r in rows if r["split"] == split]
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for r in part:
                fh.write(tag_event_line(r) + "\n")
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


def tag_events_download(
    *,
    file_format: str,
    eval_share: float = 0.0,
    tag_ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    by: User | None = None,
    tag_set: TagSet | None = None,
) -> tuple[bytes, int]:
    """The chosen events as one download: ``jsonl`` (one file, each row names its split) or ``hf``
    (a zip of what ``manage.py export_tag_events --hf`` writes: the JSONL per split and the
    ``DatasetDict`` folder). Returns ``(bytes, number of events)``; refused when none match.

    A download is a tag dataset built by ``by``: it is in the audit log (``tag_dataset.build``, about
    ``tag_set``, the set whose tags were chosen; none: every tag), with the choices and the event count."""
    if not 0 <= eval_share <= 0.9:
        raise TrainingError(f"The held-out share must be between 0 and 0.9, not {eval_share:g}.")
    if file_format not in ("jsonl", "hf"):
        raise TrainingError(f"Unknown format “{file_format}”: choose JSONL or a Hugging Face dataset.")
    rows = tag_event_rows(eval_share=eval_share, tag_ids=tag_ids, since=since, until=until)
    if not rows:
        if not TagEvent.objects.exists():  # no days or tag set would help: say where the events come from
            raise TrainingError(
                "No tag has been reviewed yet: the events are the accepts, rejects and adds of the tag "
                "reviewers (the Content tags queue, Tags); there is nothing to download until someone does."
            )
        raise TrainingError("No tag review events match: widen the days or choose another tag set.")
    if file_format == "jsonl":
        body = "".join(tag_event_line(r) + "\n" for r in rows).encode()
    else:
        body = _hf_zip(rows=rows, eval_share=eval_share)
    audit_event_record(
        actor=by,
        action="tag_dataset.build",
        obj=tag_set,
        payload={
            "format": file_format,
            "tag_set": tag_set.slug if tag_set is not None else None,
            "eval_share": eval_share,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "events": len(rows),
        },
    )
    return body, len(rows)


def _hf_zip(*, rows: list[dict[str, Any]], eval_share: float) -> bytes:
    """The rows as a zip of the JSONL per split and the ``DatasetDict`` folder (``datasets`` imported here)."""
    from datasets import disable_progress_bars

    disable_progress_bars()  # in the web process: no progress bar in the server's log per download
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tag-events"
        tag_events_export(folder=folder, eval_share=eval_share, hf=True, rows=rows)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(Path(tmp)).as_posix())
    return buffer.getvalue()
