from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models


class PreferenceDataset(models.Model):
    """A training-data snapshot built from human work: DPO preference pairs or SFT chat records.

    Immutable once built: records carry their lineage (which reviews, corrections, adjudications,
    policy version and model version), and the train/eval split is by video group so nothing leaks.
    """

    class Kind(models.TextChoices):
        DPO = "dpo", "DPO preference pairs"
        SFT = "sft", "SFT chat records"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DPO)
    eval_share = models.FloatField(default=0.0, help_text="share of video groups held out for evaluation")
    train_count = models.PositiveIntegerField(default=0)
    eval_count = models.PositiveIntegerField(default=0)
    eval_jsonl_path = models.CharField(max_length=500, blank=True)
    hf_path = models.CharField(max_length=500, blank=True, help_text="datasets.save_to_disk folder (DatasetDict)")
    policy_versions = models.JSONField(default=list, blank=True, help_text="ids of the policy versions in it")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    jsonl_path = models.CharField(max_length=500, blank=True)
    pair_count = models.PositiveIntegerField(default=0)
    # SHA-256 of the kind, the evaluation share and every record with its split: building again from
    # the same data returns this snapshot instead of a second, identical one.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    # How many of its records (train and held out) each source gave, as the build counted them: the list shows
    # where a snapshot's data came from without reading its records.
    source_counts = models.JSONField(default=dict, blank=True, help_text="records per source: {source: count}")

    class Meta:
        ordering = ["-created_at"]
        permissions = [("manage_training", "Can build datasets and launch training")]

    def __str__(self) -> str:
        return self.name

    def sources(self) -> list[tuple[str, int]]:
        """``source_counts`` as (the source's name a user reads, count), most first ("Finished Tag2CoT
        reasoning 2", "Accepted CoT correction 1"); a source this code no longer names is listed by its key."""
        choices = SftRecord.Source.choices if self.kind == self.Kind.SFT else PreferencePair.Source.choices
        names = {str(value): str(name) for value, name in choices}
        counts = sorted((-int(n), key) for key, n in (self.source_counts or {}).items() if n)
        return [(names.get(key, key), -n) for n, key in counts]


class PreferencePair(models.Model):
    class Source(models.TextChoices):
        OVERRIDE = "override", "Reviewer override"
        CORRECTION = "correction", "Labeler CoT correction"
        TAG2COT = "tag2cot", "Finished Tag2CoT reasoning"
        ADJUDICATION = "adjudication", "Adjudicated user-feedback disagreement"

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        EVAL = "eval", "Eval"

    dataset = models.ForeignKey(PreferenceDataset, on_delete=models.CASCADE, related_name="pairs")
    decision = models.ForeignKey("moderation.Decision", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, choices=Source.choices)
    prompt = models.TextField()
    chosen = models.TextField()
    rejected = models.TextField()
    label = models.CharField(max_length=100, blank=True, help_text="the human label (chosen side)")
    images = models.JSONField(default=list, blank=True)
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    lineage = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "decision"], name="one_pair_per_decision")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} pair for decision {self.decision_id}"


class SftRecord(models.Model):
    """One chat-format SFT example (TRL ``messages`` + ``images``) with its lineage."""

    class Source(models.TextChoices):
        CORRECTION = "correction", "Accepted CoT correction"
        TAG2COT = "tag2cot", "Finished Tag2CoT reasoning"
        CONFIRMED = "confirmed", "Model CoT a reviewer confirmed"

    dataset = models.ForeignKey(PreferenceDataset, on_delete=models.CASCADE, related_name="sft_records")
    decision = models.ForeignKey("moderation.Decision", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, choices=Source.choices)
    messages = models.JSONField(default=list)
    images = models.JSONField(default=list, blank=True)
    label = models.CharField(max_length=100, blank=True)
    split = models.CharField(max_length=10, choices=PreferencePair.Split.choices, default="train")
    lineage = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "decision"], name="one_sft_record_per_decision")]


class TrainingJob(models.Model):
    class Kind(models.TextChoices):
        DPO = "dpo", "DPO (TRL DPOTrainer + LoRA)"
        SFT = "sft", "SFT (TRL SFTTrainer + LoRA)"
        GRPO = "grpo", "GRPO (TRL GRPOTrainer + LoRA, BLM-Guard reward)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DPO)
    dataset = models.ForeignKey(PreferenceDataset, on_delete=models.PROTECT, related_name="jobs")
    base_model = models.CharField(max_length=500, blank=True)
    policy_version = models.ForeignKey("moderation.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="times a worker claimed it")
    storage_retries = models.PositiveSmallIntegerField(
        default=0, help_text="times it was re-queued because the object store did not answer"
    )
    resumed_from_step = models.PositiveIntegerField(null=True, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, help_text="[{step, loss, reward?}] as logged")
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    model_version = models.ForeignKey(
        "moderation.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_requested = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.pk} ({self.status})"

    @property
    def base_model_shown(self) -> str:
        """The base model as the job screens name it. Empty means TRAINING_BASE_MODEL, else the tiny local Llama,
        whose folder the runner records when it starts: the screens read "tiny local Llama" while the job was
        queued, then a path once it ran (and "tiny local Llama" even where TRAINING_BASE_MODEL named another)."""
        from training.tiny_model import TINY_MODEL_DIRNAME

        chosen = self.base_model or str(getattr(settings, "TRAINING_BASE_MODEL", "") or "").strip()
        if not chosen or Path(chosen) == Path(settings.MODELS_DIR) / TINY_MODEL_DIRNAME:
            return "tiny local Llama"
        return chosen


class RetrainRule(models.Model):
    """ "Retrain when": start a job automatically (checked by Celery beat, training.tasks.evaluate_retrain_rules).

    - ``new_pairs``: at least ``threshold`` new human disagreements (overrides, submitted/accepted
      corrections, decided adjudications) since the rule last fired.
    - ``disagreement_rate``: of the reviews since the rule last fired (at least ``min_reviews``), the
      share that overrode the model is above ``threshold``.
    """

    class Condition(models.TextChoices):
        NEW_PAIRS = "new_pairs", "N new preference pairs"
        DISAGREEMENT_RATE = "disagreement_rate", "Reviewer disagreement rate above X"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=[("sft", "SFT"), ("dpo", "DPO")], default="dpo")
    condition = models.CharField(max_length=30, choices=Condition.choices, default=Condition.NEW_PAIRS)
    threshold = models.FloatField(default=100)
    min_reviews = models.PositiveIntegerField(default=20)
    base_model = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_trigger = models.CharField(max_length=200, blank=True, help_text="what made it fire last (idempotency key)")
    last_job = models.ForeignKey(TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class EvaluationRun(models.Model):
    """A model version run over an evaluation set, with KuaiMod's metrics and BLM-Guard's strict accuracy."""

    class EvalSet(models.TextChoices):
        GOLD = "gold", "Gold set (human-labelled videos)"
        KUAIMOD_FILE = "kuaimod_file", "KuaiMod-format file"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    model_version = models.ForeignKey("moderation.ModelVersion", on_delete=models.CASCADE, related_name="+")
    policy_version = models.ForeignKey("moderation.PolicyVersion", on_delete=models.PROTECT)
    eval_set = models.CharField(max_length=20, choices=EvalSet.choices, default=EvalSet.GOLD)
    file_path = models.CharField(max_length=500, blank=True)
    eval_set_key = models.CharField(max_length=300, db_index=True, help_text="runs with the same key are comparable")
    # A KuaiMod file's size, modification time, inode and device when the run was started (and again when its worker
    # read it): a start of the same file joins the open run by these, without reading the file in the web request;
    # the worker hashes the content into ``eval_set_key`` (``evaluation_file_key``).
    file_stat = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    n_items = models.PositiveIntegerField(default=0)
    # Progress while running: items the model has decided so far, and when the worker took the run.
    n_decided = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life from the worker running it (each decided batch, and a beat while the model works);
    # a running evaluation whose heartbeat is stale lost its worker and is failed (evaluation_runs_reap_stale).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    confusion = models.JSONField(default=dict, blank=True, help_text="{labels: [...], matrix: [[...]]} true x pred")
    per_category = models.JSONField(default=dict, blank=True)
    predictions = models.JSONField(default=list, blank=True, help_text="[{item, true, pred, parse_error}]")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.model_version_id} on {self.eval_set_key}"

    @property
    def eval_set_label(self) -> str:
        """The set in words for the screens ("Gold set (human-labelled videos) · KuaiMod taxonomy v1"), where
        they showed ``eval_set_key``, the comparison key ("gold:policy_version=1")."""
        if self.eval_set == self.EvalSet.GOLD:
            what = str(self.EvalSet.GOLD.label)
        else:  # kuaimod_file:<name>:<sha256 prefix>:policy_version=<pk> (no prefix until its worker hashed it)
            head, digest, _version = (self.eval_set_key.rsplit(":", 2) + ["", ""])[:3]
            hashed = f"sha256 {digest[:8]}…" if digest else "hashed when it runs"
            what = f"KuaiMod file {head.partition(':')[2] or self.file_path} ({hashed})"
        return f"{what} · {self.policy_version}"


class ShadowDeployment(models.Model):
    """A candidate model version that decides live items beside the serving model, without effect."""

    model_version = models.ForeignKey("moderation.ModelVersion", on_delete=models.CASCADE, related_name="+")
    is_active = models.BooleanField(default=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version"], condition=models.Q(is_active=True), name="one_active_shadow"
            )
        ]


class ShadowDecision(models.Model):
    """What a shadow candidate decided about an item the serving model decided (``decision``), or why it
    could not (``error``: a rubric too long for its context, a model that fails to load…, readable as it is;
    no label then), so a failing candidate shows in the comparison instead of leaving a gap.

    A failed one is tried again (``training.release.shadow_decisions_retry_due``, on beat) from ``retry_at``,
    with backoff, up to ``SHADOW_MAX_ATTEMPTS`` tries in all; ``error`` is the last try's reason. After the last
    try ``retry_at`` is empty and it stays failed.

    ``started_at``: a try is running since then (empty once it recorded its outcome). A try whose worker was killed
    (its hard time limit, out of memory) records nothing itself: the time-limit watchdog or, failing that, the beat's
    sweep past ``training.release.SHADOW_TRY_STALLED_AFTER`` records it failed, and it is tried again like any failed
    one, within the same ``SHADOW_MAX_ATTEMPTS``."""

    decision = models.ForeignKey("moderation.Decision", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey("moderation.ModelVersion", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=100, blank=True)
    parse_error = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    agrees = models.BooleanField(default=False, help_text="same label as the live decision")
    latency_ms = models.FloatField(default=0.0)
    error = models.TextField(blank=True, help_text="why the candidate could not decide the item")
    attempts = models.PositiveSmallIntegerField(default=1, help_text="tries so far, the first included")
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="a failed decision is tried again from then; empty: not to be tried again"
    )
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="a try is running since then; empty: none runs (decided, or failed)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision", "model_version"], name="one_shadow_decision_per_candidate")
        ]
        indexes = [
            models.Index(fields=["retry_at"], name="shadow_retry_due", condition=models.Q(retry_at__isnull=False)),
            models.Index(
                fields=["started_at"], name="shadow_try_running", condition=models.Q(started_at__isnull=False)
            ),
        ]
