"""Evaluation runs: a model version over an evaluation set, scored with KuaiMod's metrics
(moderation.inference.metrics.kuaimod_metrics) plus BLM-Guard's strict accuracy and format validity.

Evaluation sets:
* ``gold``: every video with a trusted label (ItemLabel; an adjudication beats a review beats an import)
  whose label belongs to the policy version;
* ``kuaimod_file``: a KuaiMod-format JSONL file on the server (text-only items).
Runs with the same ``eval_set_key`` are comparable (the release gate compares only those).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.inference.backends import BackendResult, ContentBundle, get_backend
from moderation.inference.cot import CotParseError, parse_blm
from moderation.inference.metrics import kuaimod_metrics, tag_to_major
from moderation.models import ModelVersion, PolicyVersion, Video
from moderation.policies.spec import PolicySpec
from moderation.review.services import audit_event_record
from training.errors import TrainingError, training_error_text
from training.models import EvaluationRun
from training.services import gpu_queue_refusal_recorded
from workbench.queues import enqueue

logger = logging.getLogger(__name__)

UNPARSED = "(unparsed)"
BATCH_SIZE = 8


def eval_set_key(*, eval_set: str, policy_version: PolicyVersion, file_path: str = "", digest: str = "") -> str:
    """The comparison key: runs with the same key measured the same items. A KuaiMod file's names its content's
    sha256 (``digest``), which its worker computes (``_file_hashed``); without it (a run not hashed yet) the key
    matches no finished run."""
    if eval_set == EvaluationRun.EvalSet.GOLD:
        return f"gold:policy_version={policy_version.pk}"
    return f"kuaimod_file:{Path(file_path).name}:{digest[:16]}:policy_version={policy_version.pk}"


def evaluation_file_stat(path: Path | str) -> str:
    """What a start of ``path`` is joined to an open run by: size, modification time (ns), inode and device: one
    stat, not a read of the file (a multi-GB file's sha256 took seconds of the web request's CPU). The same file
    written again in place changes its size or time; another file moved in its place changes its inode."""
    return _stat_text(Path(path).stat())


def _stat_text(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_dev}"


def evaluation_file_digest(path: Path | str) -> str:
    """The file's sha256, read in chunks: read whole, a large file took as much of the process's memory."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _file_hashed(run: EvaluationRun) -> BinaryIO:
    """Worker side, before the items are read: the file's sha256 into the run's ``eval_set_key`` (what the release
    gate compares) and the stat it was read at into ``file_stat``; returns the file, open, for its items to be
    parsed from (the caller closes it). The file is hashed in chunks (never whole in memory) and parsed right after
    from the same opening; one that changes meanwhile (its stat) fails the run with the reason, so a key never names
    other bytes than those evaluated.

    The path is confined again here, as the start confined it (``import_path_confined``, for the user who started
    it), and opened once, through the import folders' opener (``import_file_open``: no symlink followed on the way,
    a regular file only): a file in a platform's import folder swapped for a symlink after the check (it was read
    by path twice after it, following symlinks) led the evaluation to any file the worker could read."""
    from moderation.media.ingest import import_file_open

    path = _confined_eval_file(run.file_path, user=run.created_by)
    try:
        handle = import_file_open(path)
    except ModerationError as exc:
        raise TrainingError(f"The evaluation file cannot be used: {exc}") from exc
    try:
        before = _stat_text(os.fstat(handle.fileno()))
        hashed = hashlib.sha256()
        while chunk := handle.read(1 << 20):  # in chunks: read whole, a large file took as much memory
            hashed.update(chunk)
        digest = hashed.hexdigest()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    unhashed = eval_set_key(eval_set=run.eval_set, policy_version=run.policy_version, file_path=run.file_path)
    key = eval_set_key(eval_set=run.eval_set, policy_version=run.policy_version, file_path=run.file_path, digest=digest)
    if run.eval_set_key not in (unhashed, key):
        # Started over (its worker died after hashing it): its key names the bytes it first read, which its results
        # must be of. Measured again as they are now, one run mixed two files' numbers under the first's key.
        handle.close()
        first = run.eval_set_key.rsplit(":", 2)[-2][:8]  # kuaimod_file:<name>:<sha256[:16]>:policy_version=<pk>
        raise TrainingError(
            f"The evaluation file {run.file_path} changed since this evaluation first read it (sha256 {first}… "
            f"then, {digest[:8]}… now): it is not measured again as another file. Start a new evaluation to measure "
            "the file as it is now."
        )
    run.eval_set_key = key
    run.file_stat = before
    EvaluationRun.objects.filter(pk=run.pk).update(eval_set_key=run.eval_set_key, file_stat=run.file_stat)
    return handle


def _file_unchanged_since_hashed(run: EvaluationRun, handle: BinaryIO) -> None:
    if _stat_text(os.fstat(handle.fileno())) != run.file_stat:
        raise TrainingError(
            f"The evaluation file {run.file_path} changed while it was being read: start the evaluation again once "
            "it is written."
        )


@gpu_queue_refusal_recorded
@transaction.atomic
def evaluation_start(
    *,
    model_version: ModelVersion,
    created_by: User | None,
    eval_set: str = EvaluationRun.EvalSet.GOLD,
    file_path: str = "",
    policy_version: PolicyVersion | None = None,
) -> EvaluationRun:
    """Queue an evaluation of ``model_version``; the infer queue runs it after commit.

    While a run of the same model on the same evaluation set is queued or running, that run is returned and none is
    added (a double click, a second tab): starts for one model take its row one after the other, so two at the same
    instant make one run, not two that measure the same thing on the infer queue's one GPU. Refused
    (``GpuQueueFull``, recorded in the audit log) when MAX_QUEUED_GPU_JOBS GPU jobs are queued already."""
    from moderation.policies.services import policy_version_active
    from training.services import gpu_job_slot_take, run_open_same

    policy_version = policy_version or policy_version_active()
    if eval_set not in EvaluationRun.EvalSet.values:
        raise TrainingError(f"Unknown evaluation set {eval_set!r}.")
    if eval_set == EvaluationRun.EvalSet.KUAIMOD_FILE:
        file_path = str(_confined_eval_file(file_path, user=created_by))
    else:
        # The gold set reads no file: one named anyway (an API body's) was kept on the run, shown with it, and made
        # each start a run of its own instead of joining the open one.
        file_path = ""
        if not gold_items(policy_version):
            raise TrainingError("The gold set is empty: no video has a trusted label of this policy version yet.")
    # The file is not read here: its stat says whether an open run reads the same one (its worker hashes it).
    file_stat = evaluation_file_stat(file_path) if file_path else ""
    key = eval_set_key(eval_set=eval_set, policy_version=policy_version, file_path=file_path)
    same = run_open_same(
        lock=ModelVersion.objects.filter(pk=model_version.pk),
        same=EvaluationRun.objects.filter(
            model_version=model_version,
            policy_version=policy_version,
            eval_set=eval_set,
            file_path=file_path,
        ).filter(
            # The same file as the open run read (its worker's stat), or a run that has not read it yet (its key
            # without a sha256): that one reads the file as it is when its worker opens it, so a file written again
            # after it was queued and started again was measured twice, both runs reading the new bytes.
            Q(file_stat=file_stat) | Q(eval_set_key=key)
        ),
    )
    if same is not None:
        return same
    gpu_job_slot_take(what="evaluation")  # joining an open run above adds none: not counted
    run = EvaluationRun.objects.create(
        model_version=model_version,
        policy_version=policy_version,
        eval_set=eval_set,
        file_path=file_path,
        file_stat=file_stat,
        eval_set_key=key,
        created_by=created_by,
    )
    # Which model was measured on what is the audit log's to answer: the release gate reads these runs.
    audit_event_record(
        actor=created_by,
        action="evaluation.start",
        obj=run,
        payload={
            "model_version": model_version.name,
            "policy_version": policy_version.pk,
            "eval_set": eval_set,
            "eval_set_key": run.eval_set_key,  # a file's without its sha256: the run's row gets it when it runs
            **({"file_path": file_path, "file_stat": file_stat} if file_path else {}),
        },
    )
    enqueue("training.tasks.run_evaluation", run.pk)
    return run


def _confined_eval_file(file_path: str, *, user: User | None) -> Path:
    """The evaluation file, which must lie inside MEDIA_IMPORT_ROOTS like every server path a user names
    (no '..' or symlink out of them), and, for a user who does not manage integrations, outside every integration's
    folder (a platform's files, as ``video_submit`` rules); a readable TrainingError otherwise. No user (a command,
    a test): the roots' rule alone, as for ``video_submit``."""
    from moderation.integrations.selectors import import_folders_all_open_to
    from moderation.media.ingest import import_path_confined

    if not file_path.strip():
        raise TrainingError("Name the evaluation file (KuaiMod-format JSONL inside MEDIA_IMPORT_ROOTS).")
    closed = user is not None and not import_folders_all_open_to(user=user)
    try:
        path = import_path_confined(file_path, integration_folders_closed=closed)
    except ModerationError as exc:
        raise TrainingError(f"The evaluation file cannot be used: {exc}") from exc
    if not path.is_file():
        raise TrainingError(f"The evaluation file {file_path} does not exist on the server.")
    return path


def gold_items(policy_version: PolicyVersion) -> list[tuple[str, str, Video]]:
    """(item id, true label, video) for every trusted-labelled video, one label per video."""
    from moderation.labels.selectors import item_labels_trusted

    rows = item_labels_trusted(labels=policy_version.label_names()).select_related("video")
    return [(f"video:{row.video_id}", row.label, row.video) for row in rows]


def _items(run: EvaluationRun) -> list[tuple[str, str, Any]]:
    """(item id, true label, bundle source) — bundles are built lazily per batch."""
    if run.eval_set == EvaluationRun.EvalSet.GOLD:
        return list(gold_items(run.policy_version))
    from moderation.inference.kuaimod import kuaimod_read_lines

    with _file_hashed(run) as handle:
        # Bytes that are not UTF-8 become U+FFFD, as kuaimod_read reads them; the wrapper is detached, the file
        # closed by this block.
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace")
        try:
            parsed = kuaimod_read_lines(text, labels=list(run.policy_version.label_names()))
        finally:
            text.detach()
        _file_unchanged_since_hashed(run, handle)
    return [(f"pid:{r.pid}", r.tag, r) for r in parsed.records]


def _bundle(source: Any) -> ContentBundle:
    if isinstance(source, Video):
        from moderation.inference.services import content_bundle_for

        return content_bundle_for(source)
    from moderation.inference.kuaimod import kuaimod_bundle

    return kuaimod_bundle(source)  # what the record gives when imported as a video


@dataclass
class Scores:
    metrics: dict[str, Any]
    confusion: dict[str, Any]
    per_category: dict[str, Any]


def _scene_of(result: BackendResult, policy: PolicySpec) -> str:
    if policy.output_format == "blm":
        try:
            return parse_blm(result.raw_output, policy.labels(), None).scene
        except CotParseError:
            return ""
    return tag_to_major(policy.taxonomy).get(result.label, "")


def evaluation_scores(y_true: Sequence[str], results: Sequence[BackendResult], policy: PolicySpec) -> Scores:
    """KuaiMod's metrics, strict accuracy (scene and violation type right), format validity, confusion matrix."""
    y_pred = [r.label if r.label and not r.parse_error else UNPARSED for r in results]
    # An answer that does not parse is a wrong verdict either way: a missed violation on a violative
    # item, a false flag on a safe one. (Read as "not safe", it would give a model that writes only
    # noise perfect violative recall, and the gate would refuse any real model that misses one item.)
    violative = next((t["key"] for m in policy.taxonomy for t in m.get("tags", [])), UNPARSED)
    y_binary = [
        pred if pred != UNPARSED else (policy.safe_label if true != policy.safe_label else violative)
        for true, pred in zip(y_true, y_pred, strict=True)
    ]
    metrics = kuaimod_metrics(list(y_true), y_binary, policy.taxonomy, policy.safe_label)
    majors = tag_to_major(policy.taxonomy)
    n = len(y_true)
    strict = 0
    for true, pred, result in zip(y_true, y_pred, results, strict=True):
        true_scene = majors.get(true, "")
        if pred == true and (not true_scene or _scene_of(result, policy) == true_scene):
            strict += 1
    metrics["strict_accuracy"] = strict / n if n else 0.0
    metrics["format_validity"] = sum(1 for r in results if not r.parse_error) / n if n else 0.0

    order = [policy.safe_label] + [t["key"] for m in policy.taxonomy for t in m.get("tags", [])] + [UNPARSED]
    present = set(y_true) | set(y_pred)
    labels = [label for label in order if label in present]
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for true, pred in zip(y_true, y_pred, strict=True):
        matrix[index[true]][index[pred]] += 1

    per_label = {}
    for label in labels:
        if label == UNPARSED:
            continue
        i = index[label]
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else None
        per_label[label] = {"support": support, "precision": precision, "recall": recall}
    per_category = {
        "major_recall": metrics.get("major_recall", {}),
        "major_recall_exact": metrics.get("major_recall_exact", {}),
        "major_support": metrics.get("major_support", {}),
        "labels": per_label,
    }
    return Scores(metrics=metrics, confusion={"labels": labels, "matrix": matrix}, per_category=per_category)


def _claim(run_id: int) -> EvaluationRun | None:
    """Take the run for this worker, or None: it is gone, finished, or running with a fresh heartbeat
    (a second delivery of the same task while its worker is alive). A run whose worker died is started
    over (the reaper fails it first unless the task comes back sooner)."""
    from training.services import HEARTBEAT_STALE_AFTER

    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in (EvaluationRun.Status.SUCCEEDED, EvaluationRun.Status.FAILED):
            return None
        now = timezone.now()
        if (
            run.status == EvaluationRun.Status.RUNNING
            and run.heartbeat_at
            and now - run.heartbeat_at < HEARTBEAT_STALE_AFTER
        ):
            return None
        run.status = EvaluationRun.Status.RUNNING
        run.started_at = now
        run.heartbeat_at = now
        run.n_decided = 0
        run.save(update_fields=["status", "started_at", "heartbeat_at", "n_decided"])
        return run


def _still_running(run_id: int, **fields: Any) -> bool:
    """Record progress (and a heartbeat) on a run this worker still holds; False when it does not any
    more (the reaper failed it while a batch took long): the worker then stops and leaves the run as it is."""
    updated = EvaluationRun.objects.filter(pk=run_id, status=EvaluationRun.Status.RUNNING).update(
        heartbeat_at=timezone.now(), **fields
    )
    return updated > 0


class _Heartbeat:
    """Beats every ``EVALUATION_HEARTBEAT_SECONDS`` in a thread while the model works, so a slow batch
    (a VLM on CPU takes minutes per item) is not taken for a dead worker; it dies with the process, so
    a killed worker's run goes stale. The thread has its own database connection and closes it."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"evaluation-{run_id}-heartbeat", daemon=True)

    def _beat(self) -> None:
        from django.conf import settings
        from django.db import connection

        try:
            while not self.stop.wait(float(settings.EVALUATION_HEARTBEAT_SECONDS)):
                try:
                    _still_running(self.run_id)
                except Exception:  # the database blinked: the next beat tries again
                    logger.warning("evaluation %s: heartbeat failed", self.run_id, exc_info=True)
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _prediction(item_id: str, true: str, result: BackendResult) -> dict[str, Any]:
    record: dict[str, Any] = {
        "item": item_id,
        "true": true,
        "pred": result.label,
        "parse_error": result.parse_error[:200],
    }
    if result.prompt_cut_tokens:
        record["prompt_cut_tokens"] = result.prompt_cut_tokens
        record["note"] = f"The prompt was cut by {result.prompt_cut_tokens} tokens to fit the model's context."
    return record


def evaluation_execute(*, run_id: int) -> EvaluationRun | None:
    """Run the model over the set and record the scores (worker side; the model runs outside any transaction).

    Batch by batch: each batch's bundles are built, decided and dropped, and only the small prediction
    record of each item is kept; every batch records its progress and a heartbeat.
    """
    run = _claim(run_id)
    if run is None:
        return None
    try:
        with _Heartbeat(run.pk):
            _execute(run)
    except Exception as exc:  # a failed evaluation is a visible state, never a crashed worker
        logger.exception("evaluation %s failed", run_id)
        # Our own refusals (a rubric longer than the model's context…) are written to be read as they are.
        evaluation_fail(run_id=run.pk, error=training_error_text(exc))
    run.refresh_from_db()
    return run


def evaluation_fail(*, run_id: int, error: str) -> bool:
    """End a running evaluation failed with ``error`` (its own failure, or the hard time limit that ended its
    worker, workbench/worker_limits.py); False when it is not running any more."""
    updated = EvaluationRun.objects.filter(pk=run_id, status=EvaluationRun.Status.RUNNING).update(
        status=EvaluationRun.Status.FAILED, error=error[:4000], finished_at=timezone.now()
    )
    return updated > 0


def _execute(run: EvaluationRun) -> None:
    version = run.model_version
    policy = run.policy_version.spec()
    items = _items(run)
    if not items:
        raise TrainingError("The evaluation set has no usable items.")
    if not _still_running(run.pk, n_items=len(items)):
        return
    backend = get_backend(version.backend, base_model=version.base_model, adapter_path=version.adapter_path)
    y_true = [label for _id, label, _src in items]
    results: list[BackendResult] = []
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(items), BATCH_SIZE):
        batch = items[start : start + BATCH_SIZE]
        for (item_id, true, _src), result in zip(
            batch, backend.decide_batch([_bundle(src) for _id, _label, src in batch], policy), strict=True
        ):
            predictions.append(_prediction(item_id, true, result))
            results.append(_scored(result))
        if not _still_running(run.pk, n_decided=len(results)):
            logger.warning("evaluation %s: no longer running (reaped?); stopping at %s items", run.pk, len(results))
            return
    scores = evaluation_scores(y_true, results, policy)
    scores.metrics["prompts_cut"] = sum(1 for p in predictions if p.get("prompt_cut_tokens"))
    EvaluationRun.objects.filter(pk=run.pk, status=EvaluationRun.Status.RUNNING).update(
        status=EvaluationRun.Status.SUCCEEDED,
        n_items=len(items),
        metrics=scores.metrics,
        confusion=scores.confusion,
        per_category=scores.per_category,
        predictions=predictions,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def _scored(result: BackendResult) -> BackendResult:
    """What the scores read of a result (label, parse error, the raw answer for BLM's scene), without
    its parsed chain-of-thought, which the run does not store."""
    return replace(result, cot=[])


def evaluation_latest(*, model_version: ModelVersion, eval_set_key: str | None = None) -> EvaluationRun | None:
    qs = EvaluationRun.objects.filter(model_version=model_version, status=EvaluationRun.Status.SUCCEEDED)
    qs = qs.select_related("policy_version__policy")  # its set is named in words (eval_set_label)
    if eval_set_key:
        qs = qs.filter(eval_set_key=eval_set_key)
    return qs.order_by("-finished_at", "-pk").first()


# What each metric key means, for the screens (the keys stay as tooltips: `evaluate` and the API print them).
METRIC_LABELS = {
    "n": "Items evaluated",
    "n_violative": "Violative items",
    "binary_accuracy": "Binary accuracy (violation or not)",
    "binary_accuracy_ci95": "Binary accuracy, 95% interval",
    "multiclass_accuracy": "Label accuracy (exact label)",
    "strict_accuracy": "Strict accuracy (exact label, well-formed output)",
    "format_validity": "Format validity (outputs that parse)",
    "violative_precision": "Violation precision",
    "violative_recall": "Violation recall",
    "nonviolative_precision": "Non-violation precision",
    "nonviolative_recall": "Non-violation recall",
    "cascade_auto_share": "Share decided by stage 1",
    "cascade_auto_binary_accuracy": "Binary accuracy of what stage 1 decided",
    "cascade_escalated_share": "Share escalated to stage 2",
    "prompts_cut": "Items whose prompt was cut to fit the model's context",
}


def metric_label(key: str) -> str:
    return METRIC_LABELS.get(key) or key.replace("_", " ").capitalize()


COMPARED_METRICS = (
    "binary_accuracy",
    "multiclass_accuracy",
    "strict_accuracy",
    "format_validity",
    "violative_precision",
    "violative_recall",
    "nonviolative_precision",
    "nonviolative_recall",
)


def evaluation_compare(a: EvaluationRun, b: EvaluationRun) -> dict[str, Any]:
    """Side-by-side numbers (b − a deltas), overall and per major category."""
    rows = []
    for key in COMPARED_METRICS:
        va, vb = a.metrics.get(key), b.metrics.get(key)
        rows.append(
            {
                "metric": key,
                "label": metric_label(key),
                "a": va,
                "b": vb,
                "delta": (vb - va) if va is not None and vb is not None else None,
            }
        )
    categories = []
    recall_a = a.per_category.get("major_recall", {})
    recall_b = b.per_category.get("major_recall", {})
    for key in sorted(set(recall_a) | set(recall_b)):
        va, vb = recall_a.get(key), recall_b.get(key)
        categories.append(
            {
                "category": key,
                "a": va,
                "b": vb,
                "delta": (vb - va) if va is not None and vb is not None else None,
                "support": a.per_category.get("major_support", {}).get(key),
            }
        )
    return {"metrics": rows, "categories": categories, "comparable": a.eval_set_key == b.eval_set_key}
