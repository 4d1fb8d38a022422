"""`manage.py generate_repro_eval`: transformed copies of synthetic videos, ingested and processed, then
retrieval recall@10, the student's precision/recall/F1 on held-out pairs and its cost per pair vs the teacher's.

Sources are demo clips (``synthesize_video``, 320x180, 3-5 s), each given its own look so that sources
differ in picture as well as in words. Every source gets one copy per transform (re-encode, crop,
mirror, speed +-10%, overlay text, trimmed segment: reproductions; picture-in-picture and new
narration: derivatives); the remaining demo scripts are unrelated videos. Ground truth: two videos of
one family are a reproduction pair unless either is a derivative copy; videos of different
families are unrelated. The student is evaluated leave-one-family-out (a family never straddles
train and test, as ``cluster_key_for`` guarantees for real splits).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process
from moderation.reproduction import student as student_mod
from moderation.reproduction import transforms
from moderation.reproduction.models import ReproCandidate
from moderation.reproduction.services import repro_candidates_refresh

# Distinct pictures for distinct sources (PDQ sees luminance structure, so the looks change geometry or contrast).
LOOKS = ("null", "vflip", "negate", "rotate=0.6:fillcolor=gray", "crop=iw/2:ih/2:0:0,scale=320:180", "hflip,negate")


def _look(source: Path, out: Path, look: str) -> Path:
    if look == "null":
        return source
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(source), "-vf", look, *transforms.ENCODE,
         *transforms.AUDIO, "-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def _prf(truth: list[str], pred: list[str], positive: str) -> dict[str, float]:
    tp = sum(t == positive and p == positive for t, p in zip(truth, pred, strict=True))
    fp = sum(t != positive and p == positive for t, p in zip(truth, pred, strict=True))
    fn = sum(t == positive and p != positive for t, p in zip(truth, pred, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": tp + fn}


class Command(BaseCommand):
    help = "Make transformed copies of demo videos, ingest and process them, and evaluate reproduction matching."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--sources", type=int, default=3, help="demo scripts used as originals (default 3)")
        parser.add_argument("--unrelated", type=int, default=3, help="demo scripts used as unrelated videos")
        parser.add_argument("--transforms", default=",".join(t.name for t in transforms.TRANSFORMS))
        parser.add_argument("--out", type=Path, default=None, help="folder for the mp4 files (default var/repro-eval)")
        parser.add_argument("--teacher-model", default="", help="transformers VLM folder/hub id to time the teacher on")
        parser.add_argument("--teacher-pairs", type=int, default=3)
        parser.add_argument("--save-student", action="store_true", help="train on every pair and save the student")
        parser.add_argument("--json", action="store_true", help="print only the report as one JSON line")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["sources"] + opts["unrelated"] > len(DEMO_SCRIPTS) or opts["sources"] < 1:
            raise CommandError(f"--sources + --unrelated must be at most {len(DEMO_SCRIPTS)}.")
        names = [n.strip() for n in opts["transforms"].split(",") if n.strip()]
        unknown = [n for n in names if n not in transforms.BY_NAME]
        if unknown:
            raise CommandError(f"Unknown transforms: {', '.join(unknown)}")
        out: Path = opts["out"] or Path(settings.VAR_DIR) / "repro-eval"
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            family, kind, order = self._make(out, names, opts["sources"], opts["unrelated"])
        except (ModerationError, subprocess.CalledProcessError) as exc:
            raise CommandError(str(exc)) from exc
        made = time.perf_counter() - started

        t0 = time.perf_counter()
        for video_id in order:
            repro_candidates_refresh(video_id=video_id)
        retrieval_s = (time.perf_counter() - t0) / max(1, len(order))
        report: dict[str, Any] = {
            "videos": len(order),
            "prepare_s": round(made, 1),
            "retrieval_s_per_video": round(retrieval_s, 3),
        }
        report.update(self._recall(family, kind))
        report.update(self._student(family, kind, save=opts["save_student"]))
        if opts["teacher_model"]:
            report.update(self._teacher(opts["teacher_model"], opts["teacher_pairs"]))
        if opts["json"]:
            self.stdout.write(json.dumps(report))
        else:
            for key, value in report.items():
                self.stdout.write(f"{key}: {value}")
            self.stdout.write(json.dumps(report))

    # -- data ------------------------------------------------------------------------------------------

    def _make(
        self, out: Path, names: list[str], n_sources: int, n_unrelated: int
    ) -> tuple[dict[int, str], dict[int, str], list[int]]:
        """Ingest and process sources, unrelated videos and copies (in that upload order)."""
        family: dict[int, str] = {}  # video id -> family (source slug)
        kind: dict[int, str] = {}  # video id -> "source" | transform name | "unrelated"
        order: list[int] = []
        scripts = DEMO_SCRIPTS[: n_sources + n_unrelated]
        sources: list[tuple[str, Path]] = []
        for i, script in enumerate(scripts):
            raw = synthesize_video(
                out / f"{script.slug}-raw.mp4", title=script.title, speech=script.speech, on_screen=script.on_screen,
                size=(320, 180), min_seconds=3.0, max_seconds=5.0,
            )  # fmt: skip
            path = _look(raw, out / f"{script.slug}.mp4", LOOKS[i % len(LOOKS)])
            role = "source" if i < n_sources else "unrelated"
            order.append(self._ingest(path, f"{script.title}", family, kind, script.slug, role))
            if role == "source":
                sources.append((script.slug, path))
        for slug, path in sources:
            for name in names:
                copy = transforms.apply(name, path, out / f"{slug}--{name}.mp4")
                order.append(self._ingest(copy, f"{slug} {name}", family, kind, slug, name))
        return family, kind, order

    def _ingest(self, path: Path, title: str, family: dict[int, str], kind: dict[int, str], fam: str, role: str) -> int:
        video = video_ingest(path=path, title=title, source=Video.Source.DEMO)
        video_process(video_id=video.pk)
        video.refresh_from_db()
        if video.status != Video.Status.READY:
            raise CommandError(f"{path.name} failed to process: {video.error}")
        family[video.pk], kind[video.pk] = fam, role
        self.stderr.write(f"ready: {path.name} (video {video.pk})")
        return video.pk

    @staticmethod
    def truth(a: int, b: int, family: dict[int, str], kind: dict[int, str]) -> str:
        if family.get(a) != family.get(b) or family.get(a) is None:
            return "unrelated"
        if any(transforms.BY_NAME.get(kind[v]) and transforms.BY_NAME[kind[v]].label == "derivative" for v in (a, b)):
            return "derivative"
        return "reproduction"

    # -- retrieval -------------------------------------------------------------------------------------

    def _recall(self, family: dict[int, str], kind: dict[int, str]) -> dict[str, Any]:
        """recall@10: the share of copies whose original is among their 10 best-scored candidates."""
        source_of = {family[v]: v for v in family if kind[v] == "source"}
        hits = 0
        per_transform: dict[str, list[bool]] = {}
        copies = [v for v in family if kind[v] not in {"source", "unrelated"}]
        for copy in copies:
            pairs = ReproCandidate.objects.filter(video_id=copy) | ReproCandidate.objects.filter(original_id=copy)
            ranked = [(p.original_id if p.video_id == copy else p.video_id) for p in pairs.order_by("-retrieval_score")]
            found = source_of[family[copy]] in ranked[:10]
            hits += found
            per_transform.setdefault(kind[copy], []).append(found)
        return {
            "recall_at_10": round(hits / len(copies), 4) if copies else None,
            "recall_at_10_by_transform": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_transform.items())},
            "candidate_pairs": ReproCandidate.objects.filter(video_id__in=list(family)).count(),
            **self._channels(family, kind, source_of, copies),
        }

    def _channels(
        self, family: dict[int, str], kind: dict[int, str], source_of: dict[str, int], copies: list[int]
    ) -> dict[str, Any]:
        """Per picture channel, what it finds alone: the source among a copy's neighbours above the candidate bar,
        by video embedding (one vector per video) and by keyframes (8 query keyframes, each with its neighbours); and
        the margin each leaves: the source's similarity minus the best other family's (unrelated videos included)."""
        from moderation.reproduction.selectors import video_neighbours
        from moderation.reproduction.services import FRAME_SIM_MIN, VIDEO_SIM_MIN

        found: dict[str, dict[str, list[bool]]] = {"video": {}, "keyframes": {}}
        margins: dict[str, list[float]] = {"video": [], "keyframes": []}
        for copy in copies:
            source = source_of[family[copy]]
            near = video_neighbours(video_id=copy, k_videos=50, k_frames=50, channel="both")
            best: dict[str, dict[int, float]] = {"video": {}, "keyframes": {}}
            for v, sim in near.videos:
                best["video"][v] = max(sim, best["video"].get(v, -1.0))
            for v, _t, _qt, sim in near.frames:
                best["keyframes"][v] = max(sim, best["keyframes"].get(v, -1.0))
            for channel, bar in (("video", VIDEO_SIM_MIN), ("keyframes", FRAME_SIM_MIN)):
                own = best[channel].get(source, -1.0)
                found[channel].setdefault(kind[copy], []).append(own >= bar)
                others = [s for v, s in best[channel].items() if family.get(v) != family[copy]]
                margins[channel].append(own - max(others, default=0.0))
        out: dict[str, Any] = {}
        for channel, by_kind in found.items():
            flat = [x for xs in by_kind.values() for x in xs]
            out[f"recall_{channel}_channel"] = round(sum(flat) / len(flat), 4) if flat else None
            out[f"recall_{channel}_channel_by_transform"] = {
                k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())
            }
            out[f"margin_{channel}_channel_min_median"] = (
                [round(min(margins[channel]), 3), round(statistics.median(margins[channel]), 3)]
                if margins[channel]
                else None
            )
        return out

    # -- student ---------------------------------------------------------------------------------------

    def _student(self, family: dict[int, str], kind: dict[int, str], *, save: bool) -> dict[str, Any]:
        pairs = list(ReproCandidate.objects.filter(video_id__in=list(family), original_id__in=list(family)))
        labelled = [(p, self.truth(p.video_id, p.original_id, family, kind)) for p in pairs]
        truth: list[str] = []
        pred: list[str] = []
        for fold in sorted(set(family.values())):
            train = [(p.features, y) for p, y in labelled if fold not in {family[p.video_id], family[p.original_id]}]
            test = [(p.features, y) for p, y in labelled if family[p.video_id] == fold]
            if not test or len({y for _f, y in train}) < 2:
                continue
            model = student_mod.student_fit(train, source="eval")
            truth += [y for _f, y in test]
            pred += [pr.label for pr in model.predict([f for f, _y in test])]
        report: dict[str, Any] = {
            "pairs_labelled": len(labelled),
            "label_counts": {k: sum(y == k for _p, y in labelled) for k in student_mod.LABELS},
            "student_heldout_pairs": len(truth),
            "student_reproduction": _prf(truth, pred, "reproduction"),
            "student_accuracy_3way": round(sum(t == p for t, p in zip(truth, pred, strict=True)) / len(truth), 4)
            if truth
            else None,
            "student_macro_f1": round(statistics.mean(_prf(truth, pred, c)["f1"] for c in student_mod.LABELS), 4)
            if truth
            else None,
        }
        if labelled:
            model = student_mod.student_fit([(p.features, y) for p, y in labelled], source="eval")
            rows = [p.features for p, _y in labelled]
            t0 = time.perf_counter()
            for _ in range(5):
                model.predict(rows)
            batch_us = (time.perf_counter() - t0) / 5 / len(rows) * 1e6
            t0 = time.perf_counter()
            for r in rows:
                model.predict_one(r)
            single_us = (time.perf_counter() - t0) / len(rows) * 1e6
            from moderation.reproduction.features import pair_features_compute

            t0 = time.perf_counter()
            for p, _y in labelled[:20]:
                pair_features_compute(copy_id=p.video_id, original_id=p.original_id)
            features_ms = (time.perf_counter() - t0) / min(20, len(labelled)) * 1000
            report.update({
                "student_us_per_pair_batched": round(batch_us, 2), "student_us_per_pair_single": round(single_us, 1),
                "features_ms_per_pair": round(features_ms, 2),
            })  # fmt: skip
            if save:
                student_mod.student_publish(model)
        return report

    # -- teacher ---------------------------------------------------------------------------------------

    def _teacher(self, base_model: str, n: int) -> dict[str, Any]:
        from moderation.reproduction.teacher import teacher_judge

        pairs = list(ReproCandidate.objects.select_related("video", "original").order_by("-retrieval_score")[:n])
        if not pairs:
            return {}
        teacher_judge(candidate=pairs[0], backend="transformers", base_model=base_model, refresh=True)  # load once
        t0 = time.perf_counter()
        judged = [
            teacher_judge(candidate=p, backend="transformers", base_model=base_model, refresh=True) for p in pairs
        ]
        wall_ms = (time.perf_counter() - t0) / len(pairs) * 1000
        return {
            "teacher_model": base_model, "teacher_ms_per_pair": round(wall_ms, 1),
            "teacher_generate_ms_per_pair": round(statistics.mean(j.latency_ms for j in judged), 1),
            "teacher_parsed": sum(not j.parse_error for j in judged), "teacher_judged": len(judged),
        }  # fmt: skip
