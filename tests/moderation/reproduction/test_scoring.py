"""Pair features, the student (train, save, predict, distillation from the teacher) and the teacher's plumbing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from moderation.media.models import Keyframe
from moderation.reproduction import student as student_mod
from moderation.reproduction.features import FEATURE_NAMES, PairInputs, char_ngrams, features_from, jaccard
from moderation.reproduction.models import ReproCandidate, TeacherJudgement
from moderation.reproduction.teacher import teacher_judge, teacher_output_parse
from tests.factories import VideoFactory

rng = random.Random(3)


def _hash() -> str:
    return f"{rng.getrandbits(256):064x}"


def _near(h: str, bits: int) -> str:
    value = int(h, 16)
    for b in rng.sample(range(256), bits):
        value ^= 1 << b
    return f"{value:064x}"


def _pair(kind: str) -> PairInputs:
    """Synthetic pair inputs: a reproduction shares seconds and speech; derivative shares picture not speech."""
    original = [(float(t), _hash()) for t in range(6)]
    speech = "this tea cures everything guaranteed"
    frame = [rng.random() for _ in range(16)]
    if kind == "unrelated":
        return PairInputs(copy_hashes=[(float(t), _hash()) for t in range(6)], original_hashes=original,
                          copy_frames=[[rng.random() for _ in range(16)]], original_frames=[frame],
                          copy_transcript="my cat sleeps in the sun", original_transcript=speech,
                          copy_duration=6, original_duration=5, upload_gap_seconds=3600)  # fmt: skip
    copy = (
        [(t - 1.0, _near(h, 6)) for t, h in original[1:]]
        if kind == "reproduction"
        else [(t, _near(h, 6)) for t, h in original[:2]] + [(float(t), _hash()) for t in range(2, 12)]
    )
    return PairInputs(
        copy_hashes=copy, original_hashes=original, copy_frames=[[x + 0.01 for x in frame]], original_frames=[frame],
        copy_transcript=speech if kind == "reproduction" else "here is my own long commentary on that clip",
        original_transcript=speech, copy_duration=len(copy), original_duration=6, upload_gap_seconds=7200,
    )  # fmt: skip


def test_features_of_a_reproduction_and_of_an_unrelated_pair() -> None:
    repro, _alignment = features_from(_pair("reproduction"))
    unrelated, _ = features_from(_pair("unrelated"))
    assert list(repro) == list(FEATURE_NAMES)
    assert repro["coverage_copy"] == 1.0 and repro["coverage_original"] == pytest.approx(5 / 6)
    assert repro["matched_seconds"] == 5 and repro["hash_mean_distance"] == pytest.approx(6 / 256, abs=1e-5)
    assert repro["asr_char_jaccard"] == 1.0 and repro["frame_sim_max"] > 0.99
    assert repro["duration_ratio"] == pytest.approx(5 / 6) and repro["upload_gap_log_hours"] > 0
    assert unrelated["coverage_copy"] == 0.0 and unrelated["hash_mean_distance"] == 1.0
    assert unrelated["hash_min_distance"] > 0.3 and unrelated["asr_char_jaccard"] < 0.2
    assert 0 < jaccard(char_ngrams("the cat sat"), char_ngrams("the cat ran")) < 1


def test_student_trains_predicts_and_reloads_from_disk(tmp_path: Path) -> None:
    examples = [
        (features_from(_pair(kind))[0], kind) for kind in ("reproduction", "derivative", "unrelated") for _ in range(6)
    ]
    student = student_mod.student_fit(examples, source="human")
    path = student_mod.student_save(student, tmp_path / "repro" / "student.joblib")
    loaded = student_mod.student_load(path)
    assert loaded is not None and loaded.classes == ["derivative", "reproduction", "unrelated"]
    fresh = {
        kind: loaded.predict_one(features_from(_pair(kind))[0]) for kind in ("reproduction", "derivative", "unrelated")
    }
    assert {k: p.label for k, p in fresh.items()} == {
        "reproduction": "reproduction",
        "derivative": "derivative",
        "unrelated": "unrelated",
    }
    assert fresh["reproduction"].score > 0.5 > fresh["unrelated"].score
    with pytest.raises(Exception, match="Not enough labelled pairs"):
        student_mod.student_fit(examples[:2], source="human")


@pytest.mark.django_db
def test_student_distils_from_teacher_judgements_and_rescores_the_queue(tmp_path: Path) -> None:
    kinds = ["reproduction", "derivative", "unrelated"] * 3
    pairs = []
    for kind in kinds:
        features = features_from(_pair(kind))[0]
        pair = ReproCandidate.objects.create(
            video=VideoFactory(), original=VideoFactory(), features=features, score=0.0
        )
        TeacherJudgement.objects.create(
            candidate=pair, backend="transformers", base_model="teacher", label=kind, score=0.5
        )
        pairs.append(pair)
    with override_settings(MODELS_DIR=tmp_path / "models", MEDIA_ROOT=tmp_path / "media"):
        trained = student_mod.student_train(source="teacher")
        # In media storage (the web node and other workers score with it), not in this node's MODELS_DIR.
        assert (tmp_path / "media" / "models" / "repro" / "student.joblib").is_file() and trained.meta["n"] == 9
        assert not (tmp_path / "models").exists()
        assert trained.meta["source"] == "teacher"
    pairs[0].refresh_from_db()
    pairs[2].refresh_from_db()
    assert pairs[0].student_label == "reproduction" and pairs[0].score == pairs[0].student_score > 0.5
    assert pairs[2].student_label == "unrelated" and pairs[2].score < 0.5


def test_teacher_output_parsing_is_defensive() -> None:
    good = teacher_output_parse(
        'Sure. {"score": 0.9, "label": "Reproduction", "rationale": "Same frames, mirrored."} done'
    )
    assert (good.score, good.label, good.rationale, good.error) == (0.9, "reproduction", "Same frames, mirrored.", "")
    assert teacher_output_parse("I think they match").error == "no JSON object in the output"
    bad = teacher_output_parse('{"score": 3, "label": "copy"}')
    assert bad.score is None and bad.label == "" and "outside 0..1" in bad.error and "'label'" in bad.error


@pytest.mark.django_db
@pytest.mark.integration
def test_teacher_runs_the_tiny_vlm_and_keeps_unparseable_output(
    tiny_llava: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from PIL import Image

    pair = ReproCandidate.objects.create(
        video=VideoFactory(title="copy"), original=VideoFactory(title="orig"), score=0.9
    )
    for video, colour in ((pair.video, "red"), (pair.original, "blue")):
        for i in range(2):
            buf = Path(tmp_path_factory.mktemp("img")) / "kf.jpg"
            Image.new("RGB", (64, 36), colour).save(buf)
            kf = Keyframe(video=video, index=i, timestamp=float(i), selected=True)
            kf.image.save(f"kf-{video.pk}-{i}.jpg", ContentFile(buf.read_bytes()), save=False)
            kf.save()
    judgement = teacher_judge(candidate=pair, backend="transformers", base_model=tiny_llava)
    # Random weights never write the JSON answer: recorded raw, with the reason, no score.
    assert judgement.parse_error and judgement.score is None and judgement.label == ""
    assert judgement.latency_ms > 0
    assert teacher_judge(candidate=pair, backend="transformers", base_model=tiny_llava).pk == judgement.pk
    wrong = teacher_judge(candidate=pair, backend="vllm", base_model="x")
    assert "transformers backend" in wrong.parse_error


@pytest.mark.django_db
def test_a_mirrored_copys_frames_are_compared_flipped_back_not_anti_correlated() -> None:
    """A mirrored re-upload read "Frame similarity -0.822": its thumbnails were compared unflipped, and a flip
    anti-correlates a picture that brightens left to right. Flipped back, the copy matches its original."""
    import numpy as np

    from moderation.media.analyzers import OFFLINE_FRAME_EMBEDDING, frame_embedding_mirrored, frame_embedding_offline
    from moderation.reproduction.features import pair_features_compute

    ramp = np.tile(np.linspace(0, 255, 128, dtype=np.float32), (64, 1))
    ramp[10:30, 20:40] = 255  # a bright block on the dark side, so the picture is not symmetric in any way
    picture = np.stack([ramp] * 3, axis=-1).astype(np.uint8)
    plain = frame_embedding_offline(picture)
    flipped = frame_embedding_offline(np.ascontiguousarray(picture[:, ::-1]))
    assert float(np.dot(plain, flipped)) < -0.5  # what the pair screen showed
    assert frame_embedding_mirrored(flipped, OFFLINE_FRAME_EMBEDDING) == pytest.approx(plain, abs=1e-5)
    assert frame_embedding_mirrored(flipped, "clip:openai/clip-vit-base-patch32") is None

    original = VideoFactory(frame_embedding_model=OFFLINE_FRAME_EMBEDDING)
    copy = VideoFactory(frame_embedding_model=OFFLINE_FRAME_EMBEDDING)
    Keyframe.objects.create(video=original, index=0, timestamp=0.0, embedding=plain)
    Keyframe.objects.create(video=copy, index=0, timestamp=0.0, embedding=flipped)
    features, _ = pair_features_compute(copy_id=copy.pk, original_id=original.pk)
    assert features["frame_sim_max"] > 0.99 and features["frame_sim_mean"] > 0.99
    # A learned embedding cannot be flipped without the frame: it stays as measured (the screen says so).
    copy.frame_embedding_model = "clip:openai/clip-vit-base-patch32"
    copy.save(update_fields=["frame_embedding_model"])
    features, _ = pair_features_compute(copy_id=copy.pk, original_id=original.pk)
    assert features["frame_sim_max"] < 0
