"""KuaiMod-format records: reading JSONL files and importing them as text-only items with trusted labels.

One line per video: ``{"pid", "tag", "title", "OCR", "ASR", "images"}``. ``"null"`` in a text field
means "no text" (the benchmark writes it that way).
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from moderation.errors import ModerationError
from moderation.files import operator_file_open
from moderation.inference.backends import ContentBundle, untimed_segments
from moderation.inference.stage1.inputs import TITLE_MAX_CHARS
from moderation.labels.models import ItemLabel
from moderation.media.models import Video
from moderation.policies.models import PolicyVersion
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from workbench.text import shown_name, storable_text

logger = logging.getLogger(__name__)

EXTERNAL_ID_PREFIX = "kuaimod:"


@dataclass(frozen=True)
class KuaiModRecord:
    line: int
    pid: str
    tag: str
    title: str
    ocr: str
    asr: str
    frames: int = 0  # len(images): the cover + sampled frames the record lists (0: none listed)

    @property
    def external_id(self) -> str:
        return f"{EXTERNAL_ID_PREFIX}{self.pid}"


def kuaimod_bundle(record: KuaiModRecord) -> ContentBundle:
    """A record as a model sees it: what ``content_bundle_for`` gives for the record imported as a
    video (title as stored, OCR and speech split into their ``|`` segments, no timings)."""
    return ContentBundle(
        title=record.title[:TITLE_MAX_CHARS],
        description="",
        uploader="",
        segments=untimed_segments(record.asr),
        frames=[],
        ocr=[part for part in record.ocr.split("|") if part.strip()],
        sampled_frames=record.frames,
    )


@dataclass(frozen=True)
class LineProblem:
    line: int
    reason: str


@dataclass
class KuaiModFile:
    records: list[KuaiModRecord] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    unknown_tags: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    queued: int = 0  # records sent to the model for their first decision (``decide``)
    problems: list[LineProblem] = field(default_factory=list)
    unknown_tags: dict[str, int] = field(default_factory=dict)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


def taxonomy_labels(taxonomy: list[dict[str, Any]], safe_label: str = SAFE_LABEL) -> list[str]:
    """The policy's labels in a stable order: the safe label, then every fine tag."""
    return [safe_label] + [tag["key"] for major in taxonomy for tag in major.get("tags", [])]


def _text(value: Any, name: str) -> str:
    if value is None or value == "null":
        return ""
    if not isinstance(value, str):
        raise ValueError(f"field '{name}' must be a string, got {type(value).__name__}")
    return value.strip()


def _frames(value: Any) -> int:
    if value is None or value == "null":
        return 0
    if not isinstance(value, list):
        raise ValueError(f"field 'images' must be a list, got {type(value).__name__}")
    return min(len(value), 32767)


def kuaimod_parse_line(raw: str, *, line: int) -> KuaiModRecord:
    try:
        obj = storable_text(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise ValueError("not valid JSON (nested too deeply)") from exc
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    pid = obj.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool):
        pid = str(pid)
    if not isinstance(pid, str) or not pid.strip():
        raise ValueError("missing 'pid'")
    tag = obj.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        raise ValueError("missing 'tag'")
    return KuaiModRecord(
        line=line,
        pid=pid.strip(),
        tag=tag.strip(),
        title=_text(obj.get("title"), "title"),
        ocr=_text(obj.get("OCR"), "OCR"),
        asr=_text(obj.get("ASR"), "ASR"),
        frames=_frames(obj.get("images")),
    )


def kuaimod_read(path: Path | str, *, labels: list[str] | None = None) -> KuaiModFile:
    """Parse a KuaiMod JSONL file; bad lines become problems (line number + reason), never exceptions.

    With ``labels``, a record whose tag is not one of them is rejected as a problem and counted
    in ``unknown_tags``. A pid seen twice keeps its first line.
    """
    # A regular file only, checked as opened (``operator_file_open``): a FIFO was waited on for ever, a folder ended
    # in a traceback. Bytes that are not UTF-8 become U+FFFD: one bad byte costs at most its field, never the import.
    with operator_file_open(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as handle:
        return kuaimod_read_lines(handle, labels=labels)


def kuaimod_read_lines(handle: Iterable[str], *, labels: list[str] | None = None) -> KuaiModFile:
    """``kuaimod_read`` of a file already open (as text; the caller closes it): an evaluation's worker reads the
    file it opened through ``import_file_open``, following no symlink, not the path again."""
    result = KuaiModFile()
    allowed = set(labels) if labels is not None else None
    seen: dict[str, int] = {}
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            record = kuaimod_parse_line(raw, line=number)
        except (ValueError, UnicodeDecodeError) as exc:
            result.problems.append(LineProblem(number, str(exc)))
            continue
        if allowed is not None and record.tag not in allowed:
            result.unknown_tags[record.tag] += 1
            result.problems.append(LineProblem(number, f"unknown tag '{record.tag}' (not in the policy)"))
            continue
        if record.pid in seen:
            result.problems.append(
                LineProblem(number, f"duplicate pid '{record.pid}' (first on line {seen[record.pid]})")
            )
            continue
        seen[record.pid] = number
        result.records.append(record)
    return result


def _policy_for_import(policy_version: PolicyVersion | None) -> tuple[PolicyVersion | None, list[str]]:
    if policy_version is None:
        policy_version = PolicyVersion.objects.filter(policy__slug="kuaimod", is_active=True).first()
    if policy_version is None:
        return None, taxonomy_labels(kuaimod_taxonomy())
    return policy_version, taxonomy_labels(policy_version.taxonomy, policy_version.safe_label)


def kuaimod_import(
    *, path: Path | str, policy_version: PolicyVersion | None = None, decide: bool = False
) -> ImportReport:
    """Import a KuaiMod JSONL file as text-only videos, each with its tag as an imported label.

    Idempotent by external id ``kuaimod:<pid>``: a second import of the same file changes nothing,
    an edited line updates its video and label. Each record is written in its own transaction, so
    one bad record never undoes the others. Labels are checked against ``policy_version`` (default:
    the active KuaiMod version, else the seed taxonomy).

    An imported record has no uploader and is not decided, so not routed: only admins see it
    (``video_open_to_q``), which is what evaluation and training need. With ``decide``, every record of
    the file not decided yet is queued for the serving model's decision (``run_inference``) like an upload:
    routing then opens it to the reviewers and labelers of the queues it lands in (CoT correction, Tag2CoT,
    gold items, tags), and keeps it from them when a restricted queue takes it. Refused before anything is
    written when no policy decides new videos.
    """
    if decide:
        from moderation.policies.services import policy_versions_auto_applied

        if not policy_versions_auto_applied():
            raise ModerationError(
                "No policy applies to new videos, so the records could not be decided: activate one first "
                "(`manage.py bootstrap`), or import without deciding."
            )
    policy_version, labels = _policy_for_import(policy_version)
    parsed = kuaimod_read(path, labels=labels)
    report = ImportReport(problems=list(parsed.problems), unknown_tags=dict(parsed.unknown_tags))
    for record in parsed.records:
        try:
            outcome = _import_record(record, policy_version)
        except Exception as exc:  # one record's database error is reported, the batch goes on
            logger.exception("KuaiMod import: line %s failed", record.line)
            report.problems.append(LineProblem(record.line, f"could not be saved: {exc}"))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    report.problems.sort(key=lambda p: p.line)
    if decide:
        report.queued = _decisions_queue(external_ids=[record.external_id for record in parsed.records])
    return report


def _decisions_queue(*, external_ids: list[str]) -> int:
    """Queue the first decision of each of these imported videos not decided yet (a second import with
    ``decide`` queues only what is still undecided; the task itself does no second inference)."""
    from workbench.queues import enqueue

    undecided = Video.objects.filter(external_id__in=external_ids, decisions__isnull=True).order_by("pk")
    video_ids = list(undecided.values_list("pk", flat=True))
    for video_id in video_ids:
        enqueue("moderation.inference.tasks.run_inference", video_id)
    return len(video_ids)


@transaction.atomic
def _import_record(record: KuaiModRecord, policy_version: PolicyVersion | None) -> str:
    fields = {
        "title": shown_name(record.title)[:TITLE_MAX_CHARS],
        "ocr_text": record.ocr,
        "asr_text": record.asr,
        "sampled_frames": record.frames or None,
    }
    video = Video.objects.select_for_update().filter(external_id=record.external_id).first()
    outcome = "unchanged"
    if video is None:
        video = Video.objects.create(
            external_id=record.external_id,
            source=Video.Source.KUAIMOD,
            status=Video.Status.READY,
            stage=Video.Stage.DONE,
            progress=100,
            original_filename=f"{record.external_id}.jsonl",
            **fields,
        )
        outcome = "created"
    elif any(getattr(video, k) != v for k, v in fields.items()):
        for k, v in fields.items():
            setattr(video, k, v)
        video.save(update_fields=[*fields, "updated_at"])
        outcome = "updated"
    label = ItemLabel.objects.filter(video=video, source=ItemLabel.Source.IMPORT).first()
    if label is None:
        ItemLabel.objects.create(
            video=video, source=ItemLabel.Source.IMPORT, label=record.tag, policy_version=policy_version
        )
    elif label.label != record.tag or label.policy_version_id != (policy_version.pk if policy_version else None):
        label.label = record.tag
        label.policy_version = policy_version
        label.save(update_fields=["label", "policy_version"])
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome
