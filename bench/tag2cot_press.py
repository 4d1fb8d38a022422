"""One press of "Queue new Tag2CoT tasks" (``annotation.services.tag2cot_tasks_queue``) on a long labelled history,
before and after a change of it (one ``INSERT … SELECT``, c15fd03; its items found once into a temporary table,
2f42c30; one statement finding, opening and counting, hops22), at two sizes.

The history: ``size`` decided videos, each with an imported human label the model did not reach, all but ``--due``
of them with their Tag2CoT task opened by earlier presses (the state after months of presses: a few items due a task
among many done). A VLM serves, so the press queues each new task's draft (after commit: never, here) instead of
writing a baseline draft, and the figure is what finding and opening the tasks costs. Each press runs in a
transaction rolled back afterwards, so every sample sees the same history; before and after alternate, the first
``WARM_UP`` rounds untimed. ``--before COMMIT`` loads that commit's ``annotation/selectors.py`` and
``annotation/services.py`` beside the working tree's.

    .venv/bin/python bench/tag2cot_press.py --before c15fd03 [--sizes 5000 50000] [--due 50] [--rounds 7]

The last line printed is one JSON object: ``ratio`` (after over before on the longest history; without
``--before``, the press's growth from the shortest to the longest), ``growth`` per version, then per size and
version the median, min and max in ms, and the statements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, module_at, spread  # noqa: E402

WARM_UP = 2


def _seed(n: int, *, due: int, policy_version: Any, model_version: Any, batch_size: int = 5000) -> None:
    """``n`` more labelled videos; of all, the first ``due`` have no task (the newest ``due`` are left due)."""
    from annotation.models import Tag2CotTask
    from moderation.models import ItemLabel, Video
    from tests.moderation.review.seeding import decided_videos_create

    cot = [{"key": "final_judgment", "title": "Final judgment", "text": "label: 正向", "evidence": []}]
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        decisions = decided_videos_create(
            titles=[f"Labelled {start + i}" for i in range(size)],
            policy_version=policy_version,
            model_version=model_version,
            cot=cot,
        )
        videos = [d.video for d in decisions]
        ItemLabel.objects.bulk_create(
            [ItemLabel(video=v, label="引导私下交易", source=ItemLabel.Source.IMPORT) for v in videos]
        )
        Tag2CotTask.objects.bulk_create(
            [
                Tag2CotTask(
                    decision=d,
                    video_id=d.video_id,
                    policy_version=policy_version,
                    target_label="引导私下交易",
                    label_source="import",
                    status=Tag2CotTask.Status.DONE,
                    draft_source=Tag2CotTask.DraftSource.MODEL,
                )
                for d in decisions
            ]
        )
    # The newest ``due`` labelled videos: no task yet.
    newest = Video.objects.filter(title__startswith="Labelled ").order_by("-pk")[:due]
    Tag2CotTask.objects.filter(video__in=list(newest)).delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50_000])
    parser.add_argument("--due", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", default="", help="a commit whose Tag2CoT press to time beside the working tree's")
    args = parser.parse_args()

    django_setup()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    import annotation.selectors
    from annotation import services as after
    from moderation.models import ModelVersion
    from tests.factories import PolicyVersionFactory

    versions: dict[str, Any] = {"after": after}
    if args.before:
        old_selectors = module_at(args.before, "annotation/selectors.py")
        # A service before c15fd03 imports its candidates from ``annotation.selectors``, which has them no more.
        if hasattr(old_selectors, "tag2cot_candidates"):
            annotation.selectors.tag2cot_candidates = old_selectors.tag2cot_candidates  # type: ignore[attr-defined]
        before = module_at(args.before, "annotation/services.py")
        # A service that counts the items left from its temporary table (``found=``, 2f42c30 to e34f929) calls
        # that commit's count: the working tree's takes no such table (the press counts them in its statement).
        if hasattr(before, "tag2cot_due_count") and hasattr(old_selectors, "tag2cot_due_count"):
            before.tag2cot_due_count = old_selectors.tag2cot_due_count
        versions = {"before": before, **versions}

    old = setup_databases(verbosity=0, interactive=False)
    result: dict[str, Any] = {"rounds": args.rounds, "due": args.due}
    try:
        policy_version = PolicyVersionFactory()
        model_version = ModelVersion.objects.create(
            name="vlm-x", backend="transformers", base_model="m", is_serving=True
        )
        seeded = 0
        for size in sorted(args.sizes):
            t0 = time.perf_counter()
            _seed(size - seeded, due=args.due, policy_version=policy_version, model_version=model_version)
            seeded = size
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            print(f"{size} labelled videos seeded in {time.perf_counter() - t0:.1f} s", flush=True)
            samples: dict[str, list[float]] = {name: [] for name in versions}
            for round_ in range(args.rounds + WARM_UP):
                for name, module in versions.items():
                    with transaction.atomic():
                        t0 = time.perf_counter()
                        with CaptureQueriesContext(connection) as queries:
                            opening = module.tag2cot_tasks_queue()
                        elapsed = (time.perf_counter() - t0) * 1000
                        transaction.set_rollback(True)
                    assert len(opening.created) == min(args.due, 20), (name, len(opening.created))
                    result.setdefault("statements", {})[name] = len(queries)
                    if round_ >= WARM_UP:
                        samples[name].append(elapsed)
            for name, times in samples.items():
                row = spread(times)
                result.setdefault(f"press_ms_{size}", {})[name] = row
                print(f"{size} {name}: {row} ({result['statements'][name]} statements)", flush=True)
    finally:
        teardown_databases(old, verbosity=0)
    small, large = (f"press_ms_{size}" for size in (min(args.sizes), max(args.sizes)))
    # How much longer a press takes on the longest history than on the shortest, per version; ``ratio``: after
    # over before on the longest (with ``--before``), else the working tree's growth.
    growth = {name: round(result[large][name]["median"] / result[small][name]["median"], 2) for name in versions}
    ratio = round(result[large]["after"]["median"] / result[large]["before"]["median"], 3) if args.before else None
    result = {"ratio": ratio if ratio is not None else growth["after"], "growth": growth, **result}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
