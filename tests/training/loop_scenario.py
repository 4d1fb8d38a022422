"""The product loop on synthetic videos whose verdict follows a learnable rule, run by bench/loop_learns.py
(3 seeds) and bench/loop_tune.py (the tuning seeds).

The rule: a video steers viewers to a private deal (``引导私下交易``) exactly when its on-screen text
or its speech carries one of a few risk phrases; everything else (title, filler sentences) is noise
shared by both classes. The phrases are not among the policy's keywords, so the rubric in the prompt
does not give them away: the model has to learn them from the human work.

The loop, every step through the app's own services and task bodies (as the workers run them):

1. the untrained base model serves and decides pool A (its answers do not even parse);
2. moderators review pool A (override to the true label), labelers write the CoT for each item and a
   second labeler accepts it;
3. SFT snapshot → SFT job (LoRA) → evaluation on a held-out KuaiMod-format file → the gate promotes
   the adapter only if it is better than the serving model;
4. the SFT model decides pool B; moderators approve what it got right and override its mistakes;
   labelers correct the reasoning of the mistakes;
5. DPO snapshot of the serving (SFT) model's mistakes only (KuaiMod's mistake-oriented DPO) → DPO job
   on top of the SFT adapter (merged: the SFT model is DPO's reference) → evaluation → gate → new
   decisions on pool C by whatever serves.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABEL = "引导私下交易"
SAFE = "正向"
RISK_PHRASES = ["pay me by bank transfer", "buy it from my own shop", "send the money to my account"]
FILLERS = [
    "cooking noodles with garlic",
    "my cat sleeps on the sofa",
    "morning run by the river",
    "painting a small boat",
    "a new song cover tonight",
    "fixing my bike chain",
    "the best view from the hill",
    "trying a new coffee shop",
]
TITLES = ["My day", "Weekend vlog", "Quick tips", "Look at this", "Daily life", "Just sharing", "Hello friends"]

# The reasoning labelers write for each class (the format the policy's parser reads).
COT = {
    LABEL: {
        "content_extraction": "text and speech read",
        "analysis": "asks to pay off the platform",
        "intermediate_check": "clear",
        "user_feedback": "none",
        "final_judgment": "private deal",
    },
    SAFE: {
        "content_extraction": "text and speech read",
        "analysis": "no payment request",
        "intermediate_check": "clear",
        "user_feedback": "none",
        "final_judgment": "fine",
    },
}


@dataclass
class Item:
    title: str
    ocr: str
    asr: str
    label: str


def make_items(n: int, rng: random.Random) -> list[Item]:
    """n items, half violative; the risk phrase sits in the on-screen text or in the speech."""
    items = []
    for i in range(n):
        violative = i % 2 == 0
        ocr, asr = rng.choice(FILLERS), " and ".join(rng.sample(FILLERS, 2))
        if violative:
            phrase = rng.choice(RISK_PHRASES)
            if rng.random() < 0.5:
                ocr = f"{ocr}, {phrase}"
            else:
                asr = f"{asr}, {phrase}"
        items.append(Item(rng.choice(TITLES), ocr, asr, LABEL if violative else SAFE))
    rng.shuffle(items)
    return items


def write_kuaimod_file(items: list[Item], path: Path) -> Path:
    rows = [
        {"pid": str(i), "tag": it.label, "title": it.title, "OCR": it.ocr, "ASR": it.asr} for i, it in enumerate(items)
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def loop_policy_version() -> Any:
    """A policy with the one violation this loop is about (the KuaiMod tag, one severity level)."""
    from moderation.policies.seed import kuaimod_taxonomy
    from tests.factories import PolicyVersionFactory

    major = next(m for m in kuaimod_taxonomy() if any(t["key"] == LABEL for t in m["tags"]))
    tag = {**next(t for t in major["tags"] if t["key"] == LABEL), "severities": ["high"]}
    return PolicyVersionFactory(taxonomy=[{**major, "tags": [tag]}], policy__slug="kuaimod")


@dataclass
class LoopParams:
    # SFT on a small reviewed set lands short of the ceiling (.84–.88 held out on the tuning seeds), so
    # the SFT model still makes mistakes on the larger pool B, and those become the DPO pairs.
    pool_a: int = 12  # reviewed + corrected for SFT
    pool_b: int = 64  # decided by the SFT model; its mistakes become DPO pairs
    pool_c: int = 8  # decided by whatever serves at the end
    held_out: int = 32
    sft: dict[str, Any] = field(
        default_factory=lambda: {
            "max_steps": 60,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "lora_r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.0,
            "lora_target_modules": ["all-linear"],
            "max_length": 1024,
            "save_steps": 10_000,
        }
    )
    dpo: dict[str, Any] = field(
        default_factory=lambda: {
            "max_steps": 40,
            "batch_size": 4,
            # 1e-4 and up broke the answer format on the tuning seeds (validity .72–.94); 2e-5–5e-5 did not.
            "learning_rate": 3e-5,
            "lora_r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.0,
            "lora_target_modules": ["all-linear"],
            "max_length": 1024,
            "beta": 0.1,
            "save_steps": 10_000,
        }
    )
    max_new_tokens: int = 72
    # DPO pairs from the serving (SFT) model's mistakes only, not every human disagreement so far.
    dpo_serving_only: bool = True


@dataclass
class LoopResult:
    seed: int
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # base / sft / dpo → metrics
    promoted: dict[str, bool] = field(default_factory=dict)
    gate_reasons: dict[str, list[str]] = field(default_factory=dict)
    dpo_pairs: int = 0
    mistakes_b: int = 0
    final_serving: str = ""
    pool_c_accuracy: float | None = None
    walls: dict[str, float] = field(default_factory=dict)
    dpo_params: dict[str, Any] = field(default_factory=dict)


class Loop:
    """The loop's steps, in order (``run_loop``); each step goes through the services and task bodies.

    Split into steps so a caller can stop after one (a test) or try several DPO jobs on the same SFT
    model (bench/loop_learns.py ``--tune``, on the tuning seed only).
    """

    def __init__(self, *, seed: int, work: Path, params: LoopParams | None = None, base_model: str = "") -> None:
        from tests.factories import UserFactory
        from training.tiny_model import ensure_tiny_base_model

        self.params = params or LoopParams()
        self.seed = seed
        self.rng = random.Random(seed)
        self.result = LoopResult(seed=seed)
        self.policy_version = loop_policy_version()
        self.people = {role: UserFactory(role=role, username=f"{role}-{seed}") for role in ("admin", "moderator")}
        self.labelers = [UserFactory(role="labeler", username=f"labeler-{seed}-{i}") for i in range(2)]
        self.held_out = write_kuaimod_file(make_items(self.params.held_out, self.rng), work / f"held-out-{seed}.jsonl")
        self.truth: dict[int, str] = {}
        self.base_model = base_model or ensure_tiny_base_model()
        self.sft_job: Any = None

    # --- the app's own steps ---------------------------------------------------------------------

    def videos(self, items: list[Item]) -> list[int]:
        from tests.factories import VideoFactory

        ids = []
        for it in items:
            video = VideoFactory(title=it.title, description="", ocr_text=it.ocr, asr_text=it.asr)
            self.truth[video.pk] = it.label
            ids.append(video.pk)
        return ids

    def decide(self, ids: list[int]) -> list[Any]:
        from moderation.inference.services import decision_create_for_video

        return [decision_create_for_video(video_id=vid, policy_version=self.policy_version) for vid in ids]

    def evaluate(self, version: Any, stage: str) -> dict[str, Any]:
        from training.evaluation import evaluation_execute, evaluation_start
        from training.models import EvaluationRun

        started = time.perf_counter()
        queued = evaluation_start(
            model_version=version,
            created_by=None,
            eval_set="kuaimod_file",
            file_path=str(self.held_out),
            policy_version=self.policy_version,
        )
        evaluation_execute(run_id=queued.pk)  # the infer worker's task body (a no-op if a worker ran it already)
        run = EvaluationRun.objects.get(pk=queued.pk)
        assert run.status == "succeeded", run.error
        m = run.metrics
        metrics = {
            "binary_accuracy": m["binary_accuracy"],
            "multiclass_accuracy": m["multiclass_accuracy"],
            "format_validity": m["format_validity"],
            "n": run.n_items,
        }
        self.result.stages[stage] = metrics
        self.result.walls[f"evaluate_{stage}"] = time.perf_counter() - started
        return metrics

    def review_all(self, decisions: list[Any]) -> list[Any]:
        """The moderator works the queue: approve a right answer, override anything else. Returns the mistakes."""
        from moderation.review.services import review_claim_next, review_submit

        moderator = self.people["moderator"]
        wanted = {d.pk for d in decisions}
        mistakes = []
        spec = self.policy_version.spec()
        while (task := review_claim_next(user=moderator)) is not None:
            decision = task.decision
            right = self.truth[decision.video_id]
            if decision.pk not in wanted:
                raise AssertionError(f"unexpected item in the queue: decision {decision.pk}")
            severity = spec.severities_for(right)[0]  # a violation always has one; "none" for the safe label
            if decision.label == right and not decision.parse_error:
                review_submit(task=task, user=moderator, verdict="approve", severity=severity)
            else:
                review_submit(task=task, user=moderator, verdict="override", label=right, severity=severity)
                mistakes.append(decision)
        return mistakes

    def correct(self, decisions: list[Any]) -> None:
        """A labeler writes the reasoning to the human label; a second labeler accepts it."""
        from annotation.services import cot_correction_accept, cot_correction_save

        for decision in decisions:
            label = self.truth[decision.video_id]
            correction = cot_correction_save(
                decision=decision, author=self.labelers[0], stages=COT[label], label=label, base_revision=0
            )
            cot_correction_accept(correction=correction, by=self.labelers[1], base_revision=correction.revision)

    def train(self, dataset: Any, job_params: dict[str, Any], stage: str) -> Any:
        from training.models import TrainingJob
        from training.services import training_job_start
        from training.tasks import run_training_job

        started = time.perf_counter()
        job = training_job_start(
            dataset=dataset,
            created_by=self.people["admin"],
            params=job_params,
            policy_version=self.policy_version,
            base_model=self.base_model,
        )
        run_training_job(job.pk)  # the train worker's task body
        job.refresh_from_db()
        assert job.status == TrainingJob.Status.SUCCEEDED, job.error + job.log_tail
        self.result.walls[f"train_{stage}"] = time.perf_counter() - started
        return job

    def promote(self, version: Any, stage: str) -> None:
        from training.errors import TrainingError
        from training.release import model_version_promote_gated

        try:
            model_version_promote_gated(candidate=version, by=self.people["admin"])
            self.result.promoted[stage] = True
        except TrainingError as exc:
            self.result.promoted[stage] = False
            self.result.gate_reasons[stage] = [str(exc)]

    # --- the loop ----------------------------------------------------------------------------------

    def base(self) -> None:
        """0. The untrained base model serves."""
        from moderation.inference.services import model_version_promote, model_version_register

        base = model_version_register(name=f"tiny-base-{self.seed}", backend="transformers", base_model=self.base_model)
        model_version_promote(model_version=base)
        self.evaluate(base, "base")

    def sft(self) -> None:
        """1–3. Pool A decided by the base model, reviewed, reasoning written → SFT → evaluation → gate."""
        from training.services import sft_dataset_build

        started = time.perf_counter()
        pool_a = self.decide(self.videos(make_items(self.params.pool_a, self.rng)))
        self.correct(self.review_all(pool_a))
        self.result.walls["pool_a_human_work"] = time.perf_counter() - started
        self.sft_job = self.train(sft_dataset_build(created_by=self.people["admin"]), self.params.sft, "sft")
        self.evaluate(self.sft_job.model_version, "sft")
        self.promote(self.sft_job.model_version, "sft")

    def pool_b(self) -> Any:
        """4. Pool B decided by what serves now; its mistakes are overridden and their reasoning corrected.
        Returns the DPO snapshot: the serving model's mistakes only (KuaiMod's mistake-oriented pairs),
        or None when the serving model made none (there is nothing for DPO to learn)."""
        from moderation.inference.services import model_version_serving
        from training.services import preference_dataset_build

        serving = model_version_serving()
        mistakes = self.review_all(self.decide(self.videos(make_items(self.params.pool_b, self.rng))))
        self.result.mistakes_b = len(mistakes)
        if not mistakes and self.params.dpo_serving_only:
            return None  # nothing to learn from: the app refuses an empty snapshot, and no DPO job runs
        self.correct(mistakes)
        pairs = preference_dataset_build(
            created_by=self.people["admin"], rejected_model_version=serving if self.params.dpo_serving_only else None
        )
        self.result.dpo_pairs = pairs.pair_count
        return pairs

    def dpo(self, pairs: Any, dpo_params: dict[str, Any], stage: str = "dpo") -> Any:
        """5. DPO on top of the SFT adapter (the SFT model is DPO's reference) → evaluation."""
        params = {**dpo_params, "init_adapter_path": self.sft_job.model_version.adapter_path, "seed": self.seed}
        if stage == "dpo":
            self.result.dpo_params = params
        job = self.train(pairs, params, stage)
        self.evaluate(job.model_version, stage)
        return job

    def skip_dpo(self) -> None:
        """No mistakes on pool B, so no DPO job: the SFT model keeps serving, and the "SFT+DPO" stage is it."""
        self.result.stages["dpo"] = {**self.result.stages["sft"], "dpo_job": False}
        self.result.promoted["dpo"] = False
        self.result.gate_reasons["dpo"] = ["no DPO job: the SFT model made no mistakes on pool B"]

    def finish(self) -> None:
        """New decisions on pool C by whatever serves after the gate."""
        from moderation.inference.services import model_version_serving

        serving = model_version_serving()
        self.result.final_serving = serving.name
        pool_c = self.decide(self.videos(make_items(self.params.pool_c, self.rng)))
        assert all(d.model_version_id == serving.pk for d in pool_c)
        right = sum(1 for d in pool_c if not d.parse_error and d.label == self.truth[d.video_id])
        self.result.pool_c_accuracy = right / len(pool_c) if pool_c else None


def run_loop(*, seed: int, work: Path, params: LoopParams | None = None, base_model: str = "") -> LoopResult:
    """Run the whole loop once in this process (database must be set up). See the module docstring.

    The caller sets ``VLM_MAX_NEW_TOKENS`` to ``params.max_new_tokens`` and lets ``MEDIA_IMPORT_ROOTS``
    include ``work`` (the held-out file is written there).
    """
    loop = Loop(seed=seed, work=work, params=params, base_model=base_model)
    loop.base()
    loop.sft()
    pairs = loop.pool_b()
    if pairs is None:
        loop.skip_dpo()
    else:
        dpo_job = loop.dpo(pairs, loop.params.dpo)
        loop.promote(dpo_job.model_version, "dpo")
    loop.finish()
    return loop.result
