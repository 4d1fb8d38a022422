"""Writes of the training app: preference datasets and the life of a training job."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from annotation.models import CotCorrection
from moderation.review.services import audit_event_record
from training import artifacts
from training.errors import GpuQueueFull, TrainingError
from training.models import EvaluationRun, PreferenceDataset, PreferencePair, TrainingJob
from workbench.queues import enqueue

logger = logging.getLogger(__name__)

# A running job whose worker has not reported for this long is considered dead.
HEARTBEAT_STALE_AFTER = timedelta(minutes=10)
# A job whose worker died is re-queued (and resumes from its last checkpoint) this many times in all.
MAX_ATTEMPTS = 3
LOG_TAIL_LINES = 40

DEFAULT_PARAMS: dict[str, Any] = {
    "max_steps": 4,
    "batch_size": 2,
    "learning_rate": 5e-4,
    "max_length": 2048,
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "v_proj"],
    "save_steps": 50,
    "seed": 42,
    # An adapter (e.g. the SFT job's) merged into the base before this job's LoRA is trained on top:
    # DPO after SFT, with the SFT model as DPO's reference. Empty: train on the base model itself.
    "init_adapter_path": "",
}
# Parameters only one kind of job takes (DPO's beta, GRPO's sampling and reward weights).
KIND_PARAMS: dict[str, dict[str, Any]] = {
    "sft": {},
    "dpo": {"beta": 0.1},
    "grpo": {
        "beta": 0.0,
        "num_generations": 2,
        "max_completion_length": 64,
        "temperature": 1.0,
        "reward_correctness_weight": 1.0,
        "reward_structure_weight": 1.0,
        "reward_critique_weight": 0.0,
        "guide_backend": "transformers",
        "guide_base_model": "",
        "guide_adapter_path": "",
    },
}
# name -> (type, min, max); a job's params are checked against these before it is queued.
_PARAM_BOUNDS: dict[str, tuple[type, float, float]] = {
    "max_steps": (int, 1, 100_000),
    "batch_size": (int, 1, 256),
    "learning_rate": (float, 1e-9, 1.0),
    "beta": (float, 0.0, 10.0),
    "max_length": (int, 16, 65_536),
    "lora_r": (int, 1, 1024),
    "lora_alpha": (int, 1, 4096),
    "lora_dropout": (float, 0.0, 0.9),
    "save_steps": (int, 1, 1_000_000),
    "seed": (int, 0, 2**31 - 1),
    "num_generations": (int, 2, 64),
    "max_completion_length": (int, 1, 32_768),
    "temperature": (float, 0.01, 5.0),
    "reward_correctness_weight": (float, 0.0, 100.0),
    "reward_structure_weight": (float, 0.0, 100.0),
    "reward_critique_weight": (float, 0.0, 100.0),
}
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
TERMINAL_STATUSES = (TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED)


def datasets_dir() -> Path:
    return Path(settings.TRAINING_OUTPUT_DIR) / "datasets"


def job_output_dir(job_id: int) -> Path:
    return Path(settings.TRAINING_OUTPUT_DIR) / "jobs" / str(job_id)


# --- Training data snapshots ------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write to a temporary name and rename into place, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _snapshot(
    *,
    kind: str,
    records: list[Any],
    row: Callable[[Any], dict[str, Any]],
    created_by: User | None,
    name: str | None,
    eval_share: float,
    chosen: dict[str, Any] | None = None,
) -> PreferenceDataset:
    """Save the collected records as a new dataset and export its train (and held-out) JSONL.

    Idempotent on content: when a snapshot of the same kind, evaluation share and records (each with its
    split) exists, that one is returned and nothing is written (a second click, or nothing new since). A
    name already taken gets the new snapshot's number appended, so two snapshots never share a name.
    A new snapshot is in the audit log (``dataset.build``: who built it, from what, with ``chosen``: the
    builder's choices); a returned existing one built nothing and is not."""
    if all(r.split == PreferencePair.Split.EVAL for r in records):
        # Named as the form names it ("Held-out share"): "the evaluation share" matched no field on the screen.
        raise TrainingError("Every video landed in the held-out split; lower the held-out share.")
    rows = [row(r) for r in records]
    lines = sorted(
        json.dumps([rec.split, r], sort_keys=True, ensure_ascii=False, default=str)
        for rec, r in zip(records, rows, strict=True)
    )
    content = json.dumps([kind, float(eval_share), lines], ensure_ascii=False)
    fingerprint = hashlib.sha256(content.encode()).hexdigest()
    with connection.cursor() as cursor:  # two builds at once: the second sees the first's snapshot
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('training.dataset_snapshot'))")
    existing = PreferenceDataset.objects.filter(fingerprint=fingerprint).order_by("-created_at", "-pk").first()
    if existing is not None:
        logger.info("dataset build: identical to dataset %s, which is returned", existing.pk)
        return existing
    label = "DPO pairs" if kind == PreferenceDataset.Kind.DPO else "SFT records"
    name = (name or f"{label} {timezone.now():%Y-%m-%d %H:%M}")[:180]
    taken = PreferenceDataset.objects.filter(name=name).exists()
    dataset = PreferenceDataset.objects.create(
        name=name, created_by=created_by, kind=kind, eval_share=eval_share, fingerprint=fingerprint
    )
    if taken:
        dataset.name = f"{name} (#{dataset.pk})"
        dataset.save(update_fields=["name"])
    for record in records:
        record.dataset = dataset
    type(records[0]).objects.bulk_create(records)
    folder = datasets_dir() / str(dataset.pk)
    train = [r for rec, r in zip(records, rows, strict=True) if rec.split == PreferencePair.Split.TRAIN]
    held_out = [r for rec, r in zip(records, rows, strict=True) if rec.split == PreferencePair.Split.EVAL]
    _write_jsonl(folder / "train.jsonl", train)
    artifacts.publish_file(folder / "train.jsonl")
    dataset.jsonl_path = str(folder / "train.jsonl")
    if held_out:
        _write_jsonl(folder / "eval.jsonl", held_out)
        artifacts.publish_file(folder / "eval.jsonl")
        dataset.eval_jsonl_path = str(folder / "eval.jsonl")
    dataset.pair_count = len(train)
    dataset.train_count = len(train)
    dataset.eval_count = len(held_out)
    dataset.policy_versions = sorted({rec.lineage["policy_version_id"] for rec in records})
    sources = dict(sorted(Counter(r.source for r in records).items()))
    dataset.source_counts = sources
    dataset.save()
    # What a model will be trained on, and who chose it, is the audit log's to answer (as job starts are).
    audit_event_record(
        actor=created_by,
        action="dataset.build",
        obj=dataset,
        payload={
            "kind": kind,
            "name": dataset.name,
            "eval_share": float(eval_share),
            "train_count": dataset.train_count,
            "eval_count": dataset.eval_count,
            "policy_versions": dataset.policy_versions,
            "sources": sources,
            **(chosen or {}),
        },
    )
    enqueue("training.tasks.export_dataset", dataset.pk)
    return dataset


def _check_eval_share(eval_share: float) -> float:
    if not 0.0 <= float(eval_share) < 1.0:
        raise TrainingError(
            "The held-out share must be at least 0 and below 1: the fraction of the videos kept out of training "
            "(0.2 keeps a fifth)."
        )
    return float(eval_share)


def _corrections_waiting() -> str:
    """What an empty build adds when corrections wait for their second labeler: a submitted CoT correction is
    data only once accepted, and "No corrections yet" read as if the labelers' work had been lost."""
    waiting = CotCorrection.objects.filter(status=CotCorrection.Status.SUBMITTED).count()
    if not waiting:
        return ""
    one = waiting == 1
    return (
        f" {waiting} submitted CoT correction{'' if one else 's'} wait{'s' if one else ''} for a second labeler to "
        f"accept {'it' if one else 'them'} (CoT corrections → Submitted); accepted, {'it is' if one else 'they are'} "
        "data here."
    )


@transaction.atomic
def preference_dataset_build(
    *,
    created_by: User | None,
    name: str | None = None,
    eval_share: float = 0.0,
    rejected_model_version: Any = None,
) -> PreferenceDataset:
    """Snapshot every override, accepted CoT correction, finished Tag2CoT task and adjudicated disagreement as
    DPO pairs.

    With ``rejected_model_version``, only that version's mistakes (KuaiMod's mistake-oriented DPO on
    the serving model: DPO after SFT learns from what the SFT model still gets wrong, not from an
    older model's errors).

    Exports ``<id>/train.jsonl`` (and ``eval.jsonl`` when a share is held out) with TRL's preference
    columns (``prompt``, ``chosen``, ``rejected``) plus ``images``, ``label``, ``decision_id``,
    ``source`` and ``lineage``; the Hugging Face ``datasets`` folder follows in a task.
    """
    from training.data import preference_pair_row, preference_pairs_collect

    version_id = rejected_model_version.pk if rejected_model_version is not None else None
    pairs = preference_pairs_collect(eval_share=_check_eval_share(eval_share), rejected_model_version_id=version_id)
    if not pairs and version_id is not None:
        raise TrainingError(
            f"No overrides or corrections of {rejected_model_version.name}'s decisions yet (nor Tag2CoT reasoning "
            "for them): its mistakes become "
            "the preference pairs." + _corrections_waiting()
        )
    if not pairs:
        raise TrainingError(
            "No overrides or corrections yet: preference pairs come from reviewer overrides, accepted CoT "
            "corrections, finished Tag2CoT tasks and adjudicated disagreements." + _corrections_waiting()
        )
    if name is None and rejected_model_version is not None:
        name = f"DPO pairs: mistakes of {rejected_model_version.name} {timezone.now():%Y-%m-%d %H:%M}"
    return _snapshot(
        kind=PreferenceDataset.Kind.DPO,
        records=pairs,
        row=preference_pair_row,
        created_by=created_by,
        name=name,
        eval_share=eval_share,
        chosen={"rejected_from": rejected_model_version.name if rejected_model_version is not None else "every"},
    )


@transaction.atomic
def sft_dataset_build(
    *, created_by: User | None, name: str | None = None, eval_share: float = 0.0
) -> PreferenceDataset:
    """Snapshot accepted CoT corrections, finished Tag2CoT tasks and reviewer-confirmed model CoTs as SFT chat
    records."""
    from training.data import sft_record_row, sft_records_collect

    records = sft_records_collect(eval_share=_check_eval_share(eval_share))
    if not records:
        raise TrainingError(
            "No SFT data yet: records come from accepted CoT corrections, finished Tag2CoT tasks and model CoTs a "
            "reviewer approved." + _corrections_waiting()
        )
    return _snapshot(
        kind=PreferenceDataset.Kind.SFT,
        records=records,
        row=sft_record_row,
        created_by=created_by,
        name=name,
        eval_share=eval_share,
    )


def dataset_export_hf(*, dataset_id: int) -> str:
    """Write the snapshot as a Hugging Face ``DatasetDict`` folder (``save_to_disk``); idempotent.

    Worker-side: imports ``datasets``. Returns the folder, or "" for a dataset no longer there (removed before the
    default queue's worker reached its task, or a task redelivered after that): nothing to write. Every other task
    given a stale id returns quietly; this one failed on ``DoesNotExist``.
    """
    dataset = PreferenceDataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        logger.info("dataset %s is gone: no Hugging Face folder to write", dataset_id)
        return ""
    import datasets

    folder = artifacts.local_path(dataset.jsonl_path).parent / "hf"
    if dataset.hf_path and artifacts.available(str(Path(dataset.hf_path, "dataset_dict.json"))):
        return dataset.hf_path
    splits = {}
    for split, path in (("train", dataset.jsonl_path), ("eval", dataset.eval_jsonl_path)):
        if path:
            text = artifacts.local_file(path).read_text(encoding="utf-8")
            rows = [json.loads(line) for line in text.splitlines() if line]
            splits[split] = datasets.Dataset.from_list(rows)
    tmp = folder.with_name("hf.tmp")
    datasets.DatasetDict(splits).save_to_disk(str(tmp))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    artifacts.publish_tree(folder)
    PreferenceDataset.objects.filter(pk=dataset_id).update(hf_path=str(folder))
    return str(folder)


# --- Jobs -----------------------------------------------------------------------------------


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(?:/[A-Za-z0-9][\w.-]{0,95})?")


def hub_model_cached(repo_id: str) -> bool:
    """Whether the hub model ``repo_id`` can be loaded with no network: its config.json is in the local
    Hugging Face cache (HF_HUB_CACHE), as transformers finds it in offline mode. Only the disk is read."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id for the hub
        return False
    return isinstance(found, str) and Path(found).is_file()


def model_source_checked(value: str) -> str:
    """A base or guide model typed by a user: a hub id (``org/name``) already in the local model cache
    (this server downloads nothing; see hub_model_cached), or a folder on this server that
    lies inside the model folders (MODELS_DIR, the training output, TRAINING_MODEL_ROOTS or
    MEDIA_IMPORT_ROOTS) with no '..' or symlink leading out. The configured TRAINING_BASE_MODEL is
    always accepted. Raises a readable TrainingError otherwise; nothing outside is opened.
    """
    value = (value or "").strip()
    if not value or value == (settings.TRAINING_BASE_MODEL or "").strip():
        return value
    if len(value) > MODEL_SOURCE_MAX_CHARS:
        raise TrainingError(
            f"A model is named by a hub id or a folder of at most {MODEL_SOURCE_MAX_CHARS} characters; "
            f"this one has {len(value):,}."
        )
    try:
        return _model_source_on_disk(value)
    except OSError as exc:  # a name the file system refuses (too long a part, an invalid byte)
        raise TrainingError(f"“{value[:200]}” is not a usable model folder: {exc.strerror or exc}.") from exc


MODEL_SOURCE_MAX_CHARS = 500  # TrainingJob.base_model's column


def _model_source_on_disk(value: str) -> str:
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # "~someone/…" naming a user this server does not have (a 500 before)
        raise TrainingError(f"“{value[:200]}” names the home folder of a user this server does not have.") from None
    # transformers reads an existing folder before it tries the hub, so anything that exists is a path.
    if not (value.startswith(("/", ".", "~")) or path.exists()):
        if _HUB_ID.fullmatch(value) and ".." not in value:
            if not hub_model_cached(value):
                raise TrainingError(
                    f"“{value[:200]}” is not in this server's model cache, and nothing is downloaded from a model "
                    "hub here (the server is offline). Put the model in a folder under MODELS_DIR and give that "
                    "path, or copy it into the Hugging Face cache (HF_HUB_CACHE) first."
                )
            return value
        raise TrainingError(
            f"“{value[:200]}” is neither a hub id (organisation/name) nor a model folder on this server."
        )
    roots = [
        Path(r).expanduser().absolute()
        for r in [
            settings.MODELS_DIR,
            settings.TRAINING_OUTPUT_DIR,
            *settings.TRAINING_MODEL_ROOTS,
            *settings.MEDIA_IMPORT_ROOTS,
        ]
        if str(r).strip()
    ]
    lexical = Path(os.path.normpath(path.absolute()))
    try:
        resolved = path.resolve()
    except RuntimeError:  # symlinks that lead round in a loop (a 500 before)
        raise TrainingError(f"No model folder at {value[:200]}: its symlinks lead round in a loop.") from None
    inside = any(lexical.is_relative_to(r) for r in roots) and any(resolved.is_relative_to(r.resolve()) for r in roots)
    if not inside:
        raise TrainingError(
            f"{value[:200]} is outside the model folders (MODELS_DIR, the training output, TRAINING_MODEL_ROOTS, "
            "MEDIA_IMPORT_ROOTS); paths with '..' or symlinks that lead out of them are refused."
        )
    from moderation.media.ingest import import_path_in_integration_folder

    if import_path_in_integration_folder(lexical):
        # A platform writes its own import folder: weights from there would be its code in the GPU worker (a
        # pickled checkpoint runs what it holds when loaded), and its files are not the trainers' to read.
        raise TrainingError(
            f"{value[:200]} is in a platform integration's import folder (integration-<id>/ in MEDIA_IMPORT_ROOTS): "
            "a model is never loaded from a platform's files. Put the model under MODELS_DIR."
        )
    if not resolved.is_dir():
        raise TrainingError(f"No model folder at {value[:200]}.")
    return str(resolved)


def _clean_params(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    defaults = {**DEFAULT_PARAMS, **KIND_PARAMS[kind]}
    merged = {**defaults, **(params or {})}
    unknown = set(merged) - set(defaults)
    if unknown:
        raise TrainingError(f"Unknown training parameter(s) for a {kind.upper()} job: {', '.join(sorted(unknown))}.")
    for key, (typ, low, high) in _PARAM_BOUNDS.items():
        if key not in merged:
            continue
        raw = merged[key]
        if isinstance(raw, bool):  # ``int(True)`` is 1: an API body's true ran max_steps 1
            raise TrainingError(f"{key} must be a number, not {str(raw).lower()}.")
        if typ is int and isinstance(raw, float) and math.isfinite(raw) and not raw.is_integer():
            raise TrainingError(f"{key} must be a whole number, not {raw:g}.")  # ``int(2.9)`` ran 2 steps, unsaid
        try:
            value = typ(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e400 is infinity, no int
            raise TrainingError(f"{key} must be a number.") from None
        if not low <= value <= high:
            # Whole numbers in full: ``:g`` said the seed's bound as 2.14748e+09, below the real one.
            shown = (f"{int(low)}", f"{int(high)}") if typ is int else (f"{low:g}", f"{high:g}")
            raise TrainingError(f"{key} must be between {shown[0]} and {shown[1]}.")
        merged[key] = value
    targets = merged["lora_target_modules"]
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    if targets != ["all-linear"] and (
        not isinstance(targets, list)  # an API body's number or true (was a 500: not iterable)
        or not targets
        or not all(isinstance(t, str) and _MODULE_NAME.match(t) for t in targets)
    ):
        raise TrainingError("lora_target_modules must name at least one module (e.g. q_proj, v_proj, or all-linear).")
    merged["lora_target_modules"] = list(targets)
    init_adapter = str(merged.get("init_adapter_path") or "").strip()
    if init_adapter:
        init_adapter = model_source_checked(init_adapter)  # inside the model folders, like a base model
    if init_adapter and not (Path(init_adapter) / "adapter_config.json").is_file():
        raise TrainingError(f"init_adapter_path {init_adapter} is not a saved LoRA adapter (no adapter_config.json).")
    merged["init_adapter_path"] = init_adapter
    if kind == "grpo":
        if merged["batch_size"] % merged["num_generations"]:
            raise TrainingError(
                f"batch_size ({merged['batch_size']}) must be a multiple of num_generations "
                f"({merged['num_generations']}): GRPO scores whole groups of completions per prompt."
            )
        if (
            merged["reward_correctness_weight"] + merged["reward_structure_weight"] + merged["reward_critique_weight"]
            <= 0
        ):
            raise TrainingError("At least one GRPO reward weight must be above 0.")
        if merged["guide_backend"] not in ("transformers", "vllm", "evidence_baseline"):
            raise TrainingError("guide_backend must be transformers, vllm or evidence_baseline.")
    return merged


M = TypeVar("M", bound=Model)


def run_open_same(*, lock: QuerySet[Any], same: QuerySet[M]) -> M | None:
    """The run asked for again, if one is open: the oldest of ``same`` (a training job or an evaluation with the
    settings asked for) still queued or running, read after taking ``lock``'s row (the dataset a job trains on, the
    model an evaluation measures). Starts for one such row take it one after the other, so two at the same instant
    make one run: the second finds the first's, which a double click, a second tab or a retrain rule firing beside
    an admin then joins, instead of the GPU doing the same work twice. Inside the caller's transaction; None: start
    one (the caller creates, audits and queues it, each kind its own way)."""
    lock.select_for_update().only("pk").first()
    return same.filter(status__in=("queued", "running")).order_by("pk").first()


# Every start of a job for a GPU queue takes this transaction-scoped advisory lock before it counts the queued ones.
_GPU_QUEUE_LOCK = "training.gpu_job_cap"


def gpu_jobs_queued() -> int:
    """GPU jobs made and not started yet: training jobs (train queue) and evaluations (infer queue) still queued.
    Counted from their rows, not the broker: a message can be lost or redelivered, the rows say what is owed."""
    return (
        TrainingJob.objects.filter(status=TrainingJob.Status.QUEUED).count()
        + EvaluationRun.objects.filter(status=EvaluationRun.Status.QUEUED).count()
    )


def gpu_job_slot_take(*, what: str) -> None:
    """Inside the caller's transaction, just before it creates a queued GPU job (``what``: "training job",
    "evaluation"): ``GpuQueueFull`` when MAX_QUEUED_GPU_JOBS are queued already (0: no cap). Every such start takes
    one advisory lock first and holds it to its commit, so two admins starting at once when one slot is left go one
    after the other: the second counts the first's committed job and is refused."""
    if int(settings.MAX_QUEUED_GPU_JOBS) <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_GPU_QUEUE_LOCK])
    gpu_queue_room_check(what=what)


def gpu_queue_room_check(*, what: str, started: bool = False) -> None:
    """``GpuQueueFull`` when MAX_QUEUED_GPU_JOBS GPU jobs are queued now, without the lock: the look before work that
    only a start could use (a retrain rule's dataset snapshot, written to disk and published, which a refused start
    left behind at every beat tick). The start still takes its slot (``gpu_job_slot_take``). Also the whole check of
    a start that queues no job row of its own (a shadow deployment, ``started``: its message says "not started")."""
    limit = int(settings.MAX_QUEUED_GPU_JOBS)
    if limit <= 0:
        return
    queued = gpu_jobs_queued()
    if queued >= limit:
        raise GpuQueueFull(what=what, queued=queued, limit=limit, started=started)


P = ParamSpec("P")
R = TypeVar("R")


def gpu_queue_refusal_recorded(start: Callable[P, R]) -> Callable[P, R]:
    """Wraps a GPU job's start, outside its transaction: a ``GpuQueueFull`` it raises is written to the audit log
    (``training.gpu_queue_full``, actor the start's ``created_by``, or ``by``) and the log, then raised on. Recorded
    after the start's transaction rolled back, which would have taken the record with it."""

    @functools.wraps(start)
    def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return start(*args, **kwargs)
        except GpuQueueFull as exc:
            by = cast("User | None", kwargs.get("created_by", kwargs.get("by")))
            payload = {"refused": exc.what, "queued": exc.queued, "limit": exc.limit}
            audit_event_record(actor=by, action="training.gpu_queue_full", obj=None, payload=payload)
            logger.warning("GPU queues full (%s of %s queued): a %s was refused", exc.queued, exc.limit, exc.what)
            raise

    return recorded


_KIND_NEEDS_DATASET = {"sft": PreferenceDataset.Kind.SFT, "dpo": PreferenceDataset.Kind.DPO}


@gpu_queue_refusal_recorded
@transaction.atomic
def training_job_start(
    *,
    dataset: PreferenceDataset,
    created_by: User | None,
    kind: str | None = None,
    base_model: str = "",
    policy_version: Any = None,
    params: dict[str, Any] | None = None,
) -> TrainingJob:
    """Queue a job on ``dataset``; the train queue picks it up once this transaction commits.

    ``kind`` defaults to the dataset's (SFT records → SFT, DPO pairs → DPO); GRPO takes either (it
    needs prompts and the human label). The job pins the dataset snapshot, the base model and the
    policy version whose format and labels the rewards and the evaluation use.

    Once per dataset and settings at a time: while a job of the same kind, base model, parameters and policy
    version on ``dataset`` is queued or running, that job is returned and none is added (a double click, a second
    tab, a retrain rule firing beside an admin). Starts on one dataset take its row one after the other, so two at
    the same instant make one job; before, each made its own, and the GPU trained the same model twice.

    Refused (``GpuQueueFull``, recorded in the audit log) when MAX_QUEUED_GPU_JOBS GPU jobs are queued already.
    """
    from moderation.models import PolicyVersion
    from moderation.policies.services import policy_version_active

    kind = kind or dataset.kind
    if kind not in KIND_PARAMS:
        raise TrainingError(f"Unknown job kind {kind!r}.")
    needed = _KIND_NEEDS_DATASET.get(kind)
    if needed and dataset.kind != needed:
        raise TrainingError(
            f"A {kind.upper()} job needs a dataset of {needed.label}; “{dataset.name}” holds {dataset.get_kind_display()}."
        )
    if (
        dataset.train_count == 0
        and dataset.pair_count == 0
        or not dataset.jsonl_path
        or not artifacts.available(dataset.jsonl_path)
    ):
        raise TrainingError(f"Dataset “{dataset.name}” has no exported records to train on.")
    clean = _clean_params(kind, params)
    if policy_version is None:
        ids = dataset.policy_versions or []
        policy_version = PolicyVersion.objects.filter(pk=ids[0]).first() if len(ids) == 1 else None
        policy_version = policy_version or policy_version_active()
    base = (base_model or settings.TRAINING_BASE_MODEL or "").strip()
    same = run_open_same(
        lock=PreferenceDataset.objects.filter(pk=dataset.pk),
        same=TrainingJob.objects.filter(
            dataset=dataset, kind=kind, base_model=base, params=clean, policy_version=policy_version
        ),
    )
    if same is not None:
        logger.info("training job start: job %s with these settings is open on dataset %s", same.pk, dataset.pk)
        return same
    gpu_job_slot_take(what="training job")  # joining an open job above adds none: not counted
    job = TrainingJob.objects.create(
        kind=kind,
        dataset=dataset,
        base_model=base,
        policy_version=policy_version,
        params=clean,
        total_steps=clean["max_steps"],
        created_by=created_by,
    )
    folder = job_output_dir(job.pk)
    if folder.exists():
        # Left by a job of a database that was since reset (ids start again): a new job must never
        # resume someone else's checkpoints.
        import shutil

        logger.warning("training job %s: removing stale output folder %s", job.pk, folder)
        shutil.rmtree(folder)
    job.output_dir = str(folder)
    job.save(update_fields=["output_dir"])
    # Who set a model training on what is the audit log's to answer, as promotions and publishes are.
    audit_event_record(
        actor=created_by,
        action="training.job_start",
        obj=job,
        payload={"kind": kind, "dataset": dataset.pk, "base_model": job.base_model, "max_steps": job.total_steps},
    )

    enqueue("training.tasks.run_training_job", job.pk)
    return job


@transaction.atomic
def training_job_cancel(*, job: TrainingJob, by: User | None) -> TrainingJob:
    """Cancel a job: a queued one ends now; a running one stops at its next step."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.status in TERMINAL_STATUSES:
        raise TrainingError(f"Job {job.pk} has already finished ({job.get_status_display().lower()}).")
    job.cancel_requested = True
    fields = ["cancel_requested"]
    if job.status == TrainingJob.Status.QUEUED:
        job.status = TrainingJob.Status.CANCELLED
        job.finished_at = timezone.now()
        fields += ["status", "finished_at"]
    who = getattr(by, "username", "") or "someone"
    job.log_tail = _append_log(job.log_tail, f"cancel requested by {who}")
    job.save(update_fields=[*fields, "log_tail"])
    audit_event_record(actor=by, action="training.job_cancel", obj=job, payload={"status": job.status})
    return job


def _append_log(tail: str, line: str) -> str:
    lines = [*tail.splitlines(), f"[{timezone.now():%H:%M:%S}] {line}"]
    return "\n".join(lines[-LOG_TAIL_LINES:])


@transaction.atomic
def training_job_claim(*, job_id: int) -> TrainingJob | None:
    """Mark a job running for this worker, or return None when there is nothing to do.

    Nothing to do: the job is gone, already finished, or running with a fresh heartbeat (another
    worker has it). A job running with a stale heartbeat lost its worker: this worker takes it
    over and the runner resumes from its last checkpoint (``training_job_begin``).
    """
    job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status in TERMINAL_STATUSES:
        return None
    now = timezone.now()
    if job.status == TrainingJob.Status.RUNNING:
        if job.heartbeat_at and now - job.heartbeat_at < HEARTBEAT_STALE_AFTER:
            return None
        job.log_tail = _append_log(job.log_tail, "worker stopped responding; taking over from the last checkpoint")
    if job.cancel_requested:
        job.status = TrainingJob.Status.CANCELLED
        job.finished_at = now
        job.save(update_fields=["status", "finished_at"])
        return None
    job.status = TrainingJob.Status.RUNNING
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.attempts += 1
    job.error = ""
    job.log_tail = _append_log(job.log_tail, f"claimed (attempt {job.attempts})")
    job.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "error", "log_tail"])
    return job


@transaction.atomic
def training_job_begin(*, job_id: int, resume_step: int | None) -> None:
    """The runner found (or did not find) a checkpoint: keep the history up to it, or start from 0."""
    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    if resume_step:
        job.history = [h for h in job.history if int(h.get("step", 0)) <= resume_step]
        job.step = resume_step
        job.resumed_from_step = resume_step
        job.log_tail = _append_log(job.log_tail, f"resuming from checkpoint-{resume_step}")
    else:
        job.history = []
        job.step = 0
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["history", "step", "resumed_from_step", "log_tail", "heartbeat_at"])


@transaction.atomic
def training_job_progress(
    *,
    job_id: int,
    step: int,
    total_steps: int | None = None,
    loss: float | None = None,
    reward: float | None = None,
    log_line: str = "",
    points: list[dict[str, Any]] | None = None,
    log_lines: list[str] | None = None,
) -> bool:
    """Record a worker's progress report; returns True when the job should stop (cancel requested).

    One report may carry several buffered history ``points`` ({"step", "loss"/"reward"}) and
    ``log_lines`` (the runner writes at most every ``PROGRESS_FLUSH_SECONDS``), or a single ``loss``/``reward``.
    """
    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    job.step = step
    job.heartbeat_at = timezone.now()
    fields = ["step", "heartbeat_at"]
    if total_steps:
        job.total_steps = total_steps
        fields.append("total_steps")
    new_points = list(points or [])
    if loss is not None or reward is not None:
        point: dict[str, Any] = {"step": step}
        if loss is not None:
            point["loss"] = round(float(loss), 6)
        if reward is not None:
            point["reward"] = round(float(reward), 6)
        new_points.append(point)
    if new_points:
        job.history = [*job.history, *new_points]
        fields.append("history")
    lines = [*(log_lines or []), *([log_line] if log_line else [])]
    if lines:
        for line in lines:
            job.log_tail = _append_log(job.log_tail, line)
        fields.append("log_tail")
    job.save(update_fields=fields)
    return job.cancel_requested


def training_job_cancel_requested(*, job_id: int) -> bool:
    """For worker processes that do not own the job row (non-zero ranks): should they stop?"""
    return TrainingJob.objects.filter(pk=job_id, cancel_requested=True).exists()


@transaction.atomic
def training_job_set_base_model(*, job_id: int, base_model: str) -> None:
    TrainingJob.objects.filter(pk=job_id).update(base_model=base_model, heartbeat_at=timezone.now())


NO_LEARNING_SIGNAL_WARNING = (
    "Every reward was 0: the policy got no learning signal — this model version is the starting model unchanged "
    "in effect. Check that the dataset's labels and the policy's output format can be met, then train again."
)
EQUAL_REWARDS_WARNING = (
    "Every completion of a prompt got the same reward as the others of that prompt (mean reward {reward}): "
    "no completion was better than another, so every advantage was 0 and the policy got no learning signal — "
    "this model version is the starting model unchanged in effect. Raise the temperature or the number of "
    "generations, or check that the rewards can tell completions apart, then train again."
)


def _grpo_point_is_flat(point: dict[str, Any]) -> bool:
    """No advantage at this logged step: every group's rewards were equal (all 0 is one such case).

    GRPO's advantage is a completion's reward minus its group's mean, so equal rewards within every
    group teach nothing, whatever their value. TRL logs the share of groups with zero spread
    (``frac_reward_zero_std``); histories written before it was recorded have the batch's spread
    (``reward_std``: 0 means every reward of the batch was equal) or only the mean (0: all were 0,
    as every reward is non-negative).
    """
    if point.get("frac_reward_zero_std") is not None:
        return math.isclose(float(point["frac_reward_zero_std"]), 1.0, abs_tol=1e-9)
    if point.get("reward_std") is not None:
        return math.isclose(float(point["reward_std"]), 0.0, abs_tol=1e-9)
    return float(point["reward"]) == 0


def grpo_no_learning_signal(*, kind: str, history: list[dict[str, Any]]) -> str | None:
    """Why a GRPO job learned nothing (the warning to show), or None when some step had a signal.

    The one home of the rule: every logged step had equal rewards in every group, so every
    advantage was 0. All rewards 0 gets its own, plainer warning.
    """
    points = [point for point in history if point.get("reward") is not None]
    if kind != TrainingJob.Kind.GRPO or not points or not all(_grpo_point_is_flat(p) for p in points):
        return None
    if all(float(point["reward"]) == 0 for point in points):
        return NO_LEARNING_SIGNAL_WARNING
    mean = sum(float(point["reward"]) for point in points) / len(points)
    return EQUAL_REWARDS_WARNING.format(reward=f"{mean:.3g}")


@transaction.atomic
def training_job_succeed(*, job_id: int, adapter_path: str, metrics: dict[str, Any]) -> TrainingJob:
    """Finish a job whose adapter is saved: register it as a model version moderation can serve.

    A GRPO job that got no learning signal (every group's rewards equal, e.g. all 0) still registers
    its (unchanged) adapter, so the run stays traceable, but the version's metrics carry
    ``no_learning_signal`` and its warning: the job screen and the model list show it, and the release
    gate refuses to promote it.
    """
    from moderation.inference.services import model_version_register
    from moderation.models import ModelVersion

    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    warning = grpo_no_learning_signal(kind=job.kind, history=job.history)
    if warning:
        metrics = {**metrics, "no_learning_signal": True, "warning": warning}
    version = model_version_register(
        name=f"{job.kind}-job-{job.pk}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        base_model=job.base_model,
        adapter_path=adapter_path,
        source_job_id=job.pk,
        metrics={
            **metrics,
            "kind": job.kind,
            "dataset_id": job.dataset_id,
            "policy_version_id": job.policy_version_id,
        },
    )
    job.model_version = version
    job.status = TrainingJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    job.log_tail = _append_log(job.log_tail, f"adapter saved to {adapter_path}; registered {version.name}")
    if warning:
        job.log_tail = _append_log(job.log_tail, f"warning: {warning}")
    job.save(update_fields=["model_version", "status", "finished_at", "log_tail"])
    return job


@transaction.atomic
def training_job_finish_cancelled(*, job_id: int) -> None:
    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    job.status = TrainingJob.Status.CANCELLED
    job.finished_at = timezone.now()
    job.log_tail = _append_log(job.log_tail, f"cancelled at step {job.step}")
    job.save(update_fields=["status", "finished_at", "log_tail"])


@transaction.atomic
def training_job_fail(*, job_id: int, error: str) -> None:
    job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status in TERMINAL_STATUSES:
        return
    job.status = TrainingJob.Status.FAILED
    job.error = error[:4000]
    job.finished_at = timezone.now()
    job.log_tail = _append_log(job.log_tail, f"failed: {error.splitlines()[0] if error else 'unknown error'}")
    job.save(update_fields=["status", "error", "finished_at", "log_tail"])


@transaction.atomic
def training_job_wait_for_storage(*, job_id: int, error: str) -> bool:
    """The object store did not answer mid-job (checkpoint, dataset or adapter): re-queue the job to resume
    from its last stored checkpoint after a growing pause, like the media tasks; once the store has stayed
    away ``STORAGE_RETRIES`` times the job ends failed with the reason. Returns True when re-queued.

    A re-queue for the store does not count as one of the job's ``MAX_ATTEMPTS`` (lost workers)."""
    from workbench.storage import STORAGE_RETRIES, storage_retry_delay

    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    if job.status != TrainingJob.Status.RUNNING:
        return False
    now = timezone.now()
    if job.cancel_requested:
        job.status, job.finished_at = TrainingJob.Status.CANCELLED, now
        job.save(update_fields=["status", "finished_at"])
        return False
    if job.storage_retries >= STORAGE_RETRIES:
        job.status, job.finished_at = TrainingJob.Status.FAILED, now
        job.error = f"The object store stayed unreachable ({job.storage_retries} retries): {error}"
        job.log_tail = _append_log(job.log_tail, "object store unreachable; out of retries")
        job.save(update_fields=["status", "finished_at", "error", "log_tail"])
        return False
    delay = storage_retry_delay(job.storage_retries)
    job.storage_retries += 1
    job.attempts = max(job.attempts - 1, 0)
    job.status = TrainingJob.Status.QUEUED
    job.error = f"Waiting for the object store (retry {job.storage_retries} in {delay} s): {error}"
    job.log_tail = _append_log(job.log_tail, f"object store unreachable at step {job.step}; re-queued in {delay} s")
    job.save(update_fields=["storage_retries", "attempts", "status", "error", "log_tail"])
    enqueue("training.tasks.run_training_job", job_id, countdown=delay)
    return True


def training_jobs_reap_stale(*, now: Any = None) -> list[int]:
    """Handle running jobs whose worker stopped sending heartbeats; returns their ids.

    A job with attempts left goes back to the train queue (the next worker resumes it from its
    last checkpoint); one that has used ``MAX_ATTEMPTS`` ends failed with the reason.
    """

    cutoff = (now or timezone.now()) - HEARTBEAT_STALE_AFTER
    reaped = []
    stale_ids = list(
        TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for job_id in stale_ids:
        with transaction.atomic():
            job = TrainingJob.objects.select_for_update().get(pk=job_id)
            if job.status != TrainingJob.Status.RUNNING or (job.heartbeat_at and job.heartbeat_at >= cutoff):
                continue  # it reported in meanwhile
            if job.attempts < MAX_ATTEMPTS and not job.cancel_requested:
                job.status = TrainingJob.Status.QUEUED
                job.log_tail = _append_log(
                    job.log_tail, f"worker stopped responding at step {job.step}; re-queued to resume"
                )
                job.save(update_fields=["status", "log_tail"])
                enqueue("training.tasks.run_training_job", job_id)
            else:
                job.status = TrainingJob.Status.FAILED
                job.error = (
                    f"The worker stopped responding (no heartbeat for 10 minutes) after {job.attempts} attempt(s)."
                )
                job.finished_at = timezone.now()
                job.log_tail = _append_log(job.log_tail, "worker stopped responding")
                job.save(update_fields=["status", "error", "finished_at", "log_tail"])
            reaped.append(job_id)
    return reaped


def evaluation_runs_reap_stale(*, now: Any = None) -> list[int]:
    """Fail running evaluations whose worker stopped sending heartbeats; returns their ids.

    An evaluation keeps nothing between attempts, so it is not re-queued (a set that took its worker
    down would take the next one down too): it ends failed with how far it got, and the evaluation
    page offers to start it again.
    """
    cutoff = (now or timezone.now()) - HEARTBEAT_STALE_AFTER
    stale = EvaluationRun.objects.filter(status=EvaluationRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    reaped = []
    for run_id in list(stale.values_list("pk", flat=True)):
        with transaction.atomic():
            run = EvaluationRun.objects.select_for_update().get(pk=run_id)
            last_seen = run.heartbeat_at or run.started_at
            if run.status != EvaluationRun.Status.RUNNING or (last_seen and last_seen >= cutoff):
                continue  # it finished or reported in meanwhile
            run.status = EvaluationRun.Status.FAILED
            run.error = evaluation_lost_worker_reason(run)
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            logger.warning(
                "evaluation %s: worker stopped responding at %s of %s items", run.pk, run.n_decided, run.n_items
            )
            reaped.append(run_id)
    return reaped


def evaluation_lost_worker_reason(run: EvaluationRun) -> str:
    minutes = int(HEARTBEAT_STALE_AFTER.total_seconds() // 60)
    if run.n_items:
        where = f"stopped at {min(run.n_decided, run.n_items)} of {run.n_items} items"
    else:
        where = "stopped before it had read the evaluation set and loaded the model"
    return (
        f"The worker running this evaluation {where} (it may have run out of memory or been restarted; "
        f"nothing was heard from it for {minutes} minutes). Start the evaluation again; if it stops again, "
        "ask an administrator to look at the inference worker's log and memory."
    )
