"""Pair features: what the student model (and a reviewer) weighs when deciding whether one video reproduces another.

``pair_features_compute`` reads both videos from the database; ``features_from`` is the pure part the
tests drive with synthetic inputs. Every feature is a float; ``FEATURE_NAMES`` fixes their order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from moderation.reproduction import matching

# The version of how ``features_from`` measures a pair, stored with each pair (``ReproCandidate.scored_with``) so
# ``manage.py rescore_pairs`` finds the pairs measured before a change. 0: before it was recorded; 2: a mirrored
# copy's frames are compared flipped back (before, its frame similarity read about -0.8).
PAIR_SCORER_VERSION = 2

FEATURE_NAMES: tuple[str, ...] = (
    "coverage_copy",  # share of the copy's seconds matched to the original under the best alignment
    "coverage_original",  # share of the original's seconds matched
    "matched_seconds",
    "mirrored",  # 1 when the match needed flipping the copy
    "speed_change",  # |scale - 1| of the alignment
    "hash_min_distance",  # closest pair of seconds, bits / 256 (1 when no hashes)
    "hash_mean_distance",  # mean over the aligned matches, bits / 256 (1 when none)
    "frame_sim_max",  # frame embeddings: best cosine similarity of any pair of frames (a frame flipped or not)
    "frame_sim_mean",  # mean over the copy's frames of its best match in the original (flipped or not)
    "transcript_sim",  # cosine similarity of the transcript embeddings (0 when either is missing)
    "asr_char_jaccard",  # character 3-gram Jaccard similarity of the transcripts
    "asr_both_present",
    "duration_ratio",  # shorter / longer
    "upload_gap_log_hours",  # log1p(hours between the uploads), always >= 0: the copy is the later one
)


@dataclass
class PairInputs:
    """Everything a pair's features are computed from (per-second hashes, embeddings, transcripts, times)."""

    copy_hashes: list[tuple[float, str]] = field(default_factory=list)
    copy_hashes_mirrored: list[tuple[float, str]] = field(default_factory=list)
    original_hashes: list[tuple[float, str]] = field(default_factory=list)
    copy_frames: list[Sequence[float]] = field(default_factory=list)
    # the copy's frames' embeddings mirrored left-right, row for row with ``copy_frames`` (empty when the
    # embedding cannot be flipped): a mirrored copy is compared both ways round, as its hashes are
    copy_frames_mirrored: list[Sequence[float]] = field(default_factory=list)
    original_frames: list[Sequence[float]] = field(default_factory=list)
    copy_text_embedding: Sequence[float] | None = None
    original_text_embedding: Sequence[float] | None = None
    copy_transcript: str = ""
    original_transcript: str = ""
    copy_duration: float = 0.0
    original_duration: float = 0.0
    upload_gap_seconds: float = 0.0


_WORDS = re.compile(r"\W+", re.UNICODE)


def char_ngrams(text: str, n: int = 3) -> set[str]:
    squashed = " ".join(_WORDS.sub(" ", text.lower()).split())
    if len(squashed) < n:
        return {squashed} if squashed else set()
    return {squashed[i : i + n] for i in range(len(squashed) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _cosine_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> Any:
    import numpy as np

    x = np.asarray(a, dtype=np.float32)
    y = np.asarray(b, dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-9)
    return x @ y.T


def features_from(inputs: PairInputs) -> tuple[dict[str, float], matching.Alignment]:
    """The feature vector of a pair and the alignment it was measured under."""
    alignment = matching.align(inputs.copy_hashes, inputs.original_hashes, copy_mirrored=inputs.copy_hashes_mirrored)
    distances = [
        matching.hamming_hex(hc, ho)
        for source in (inputs.copy_hashes, inputs.copy_hashes_mirrored)
        for _tc, hc in source
        if hc
        for _to, ho in inputs.original_hashes
        if ho
    ]
    matched = [m["d"] for m in alignment.matches]
    frame_max = frame_mean = 0.0
    if inputs.copy_frames and inputs.original_frames:
        sims = _cosine_matrix(inputs.copy_frames, inputs.original_frames)
        if len(inputs.copy_frames_mirrored) == len(inputs.copy_frames):
            # Mirroring anti-correlates a thumbnail with its original (-0.8 for a clean flip): the flipped
            # copy's similarity is the one that says whether the pictures are the same.
            import numpy as np

            sims = np.maximum(sims, _cosine_matrix(inputs.copy_frames_mirrored, inputs.original_frames))
        frame_max = float(sims.max())
        frame_mean = float(sims.max(axis=1).mean())
    transcript_sim = 0.0
    if inputs.copy_text_embedding is not None and inputs.original_text_embedding is not None:
        transcript_sim = float(_cosine_matrix([inputs.copy_text_embedding], [inputs.original_text_embedding])[0, 0])
    both_text = bool(inputs.copy_transcript.strip() and inputs.original_transcript.strip())
    durations = sorted([max(inputs.copy_duration, 0.0), max(inputs.original_duration, 0.0)])
    features = {
        "coverage_copy": alignment.coverage_copy,
        "coverage_original": alignment.coverage_original,
        "matched_seconds": float(alignment.matched_seconds),
        "mirrored": 1.0 if alignment.mirrored and alignment.matches else 0.0,
        "speed_change": abs(alignment.scale - 1.0) if alignment.matches else 0.0,
        "hash_min_distance": (min(distances) / matching.HASH_BITS) if distances else 1.0,
        "hash_mean_distance": (sum(matched) / len(matched) / matching.HASH_BITS) if matched else 1.0,
        "frame_sim_max": frame_max,
        "frame_sim_mean": frame_mean,
        "transcript_sim": transcript_sim,
        "asr_char_jaccard": jaccard(char_ngrams(inputs.copy_transcript), char_ngrams(inputs.original_transcript)),
        "asr_both_present": 1.0 if both_text else 0.0,
        "duration_ratio": (durations[0] / durations[1]) if durations[1] > 0 else 0.0,
        "upload_gap_log_hours": math.log1p(abs(inputs.upload_gap_seconds) / 3600.0),
    }
    return {name: round(float(features[name]), 6) for name in FEATURE_NAMES}, alignment


def feature_vector(features: dict[str, Any]) -> list[float]:
    return [float(features.get(name, 0.0) or 0.0) for name in FEATURE_NAMES]


def pair_inputs_load(*, copy_id: int, original_id: int) -> PairInputs:
    """Read a pair's inputs: the PDQ index rows (falling back to keyframe hashes), embeddings and transcripts."""
    from moderation.media import analyzers
    from moderation.media.models import Keyframe, TranscriptSegment, Video
    from moderation.reproduction.models import FrameHash

    videos = {v.pk: v for v in Video.objects.filter(pk__in=[copy_id, original_id])}
    copy, original = videos[copy_id], videos[original_id]

    def hashes(video_id: int) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
        rows = list(FrameHash.objects.filter(video_id=video_id).order_by("t").values_list("t", "hash", "hash_mirror"))
        if rows:
            plain = [(t, _bits_hex(h)) for t, h, _m in rows]
            mirrored = [(t, _bits_hex(m)) for t, _h, m in rows if m]
            return plain, mirrored
        kfs = Keyframe.objects.filter(video_id=video_id).exclude(pdq_hash="").order_by("index")
        return [(k.timestamp, k.pdq_hash) for k in kfs], []

    def frames(video_id: int) -> list[Sequence[float]]:
        return [
            [float(x) for x in e]  # type: ignore[union-attr]  # filtered on embedding__isnull=False
            for e in Keyframe.objects.filter(video_id=video_id, embedding__isnull=False)
            .order_by("index")
            .values_list("embedding", flat=True)
        ]

    def transcript(video: Video) -> str:
        text = " ".join(TranscriptSegment.objects.filter(video=video).order_by("index").values_list("text", flat=True))
        return text or video.asr_text

    copy_plain, copy_mirror = hashes(copy_id)
    orig_plain, _ = hashes(original_id)
    copy_frames = frames(copy_id)
    flipped = [analyzers.frame_embedding_mirrored(f, copy.frame_embedding_model) for f in copy_frames]
    return PairInputs(
        copy_hashes=copy_plain, copy_hashes_mirrored=copy_mirror, original_hashes=orig_plain,
        copy_frames=copy_frames, original_frames=frames(original_id),
        copy_frames_mirrored=[f for f in flipped if f is not None] if all(f is not None for f in flipped) else [],
        copy_text_embedding=_vector_or_none(copy.text_embedding),
        original_text_embedding=_vector_or_none(original.text_embedding),
        copy_transcript=transcript(copy), original_transcript=transcript(original),
        copy_duration=copy.duration or 0.0, original_duration=original.duration or 0.0,
        upload_gap_seconds=(copy.created_at - original.created_at).total_seconds(),
    )  # fmt: skip


def _vector_or_none(value: Any) -> list[float] | None:
    return None if value is None else [float(x) for x in value]


def _bits_hex(value: Any) -> str:
    """A ``bit(256)`` value as read back (a '0'/'1' string or pgvector's Bit) → 64 hex digits."""
    if value is None:
        return ""
    bits = value if isinstance(value, str) else value.to_text()
    return f"{int(bits, 2):064x}"


def pair_features_compute(*, copy_id: int, original_id: int) -> tuple[dict[str, float], matching.Alignment]:
    return features_from(pair_inputs_load(copy_id=copy_id, original_id=original_id))
