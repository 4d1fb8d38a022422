"""`manage.py evaluate --train FILE [--test FILE | --cv K] [--threshold X]`: score the cascade's stage 1.

Works from KuaiMod-format files alone. The last line of output is one JSON object with every number.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.inference.evaluation import stage1_cross_validate, stage1_evaluate
from moderation.inference.kuaimod import KuaiModFile, kuaimod_read, taxonomy_labels
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


class Command(BaseCommand):
    help = (
        "Train the cascade's stage-1 classifier on one KuaiMod-format file and report KuaiMod's metrics on "
        "another (--test), or cross-validate over one file (--cv K)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--train", type=Path, required=True)
        parser.add_argument("--test", type=Path)
        parser.add_argument("--cv", type=int, help="stratified K-fold cross-validation over --train")
        parser.add_argument("--threshold", type=float, default=None, help="escalation entropy (default: settings)")
        parser.add_argument("--seed", type=int, default=0, help="fold shuffling seed for --cv")

    def _read(self, path: Path, labels: list[str]) -> KuaiModFile:
        parsed = kuaimod_read(path, labels=labels)
        for problem in parsed.problems:
            self.stderr.write(f"{path.name} line {problem.line}: {problem.reason} (skipped)")
        return parsed

    def handle(self, *args: Any, **opts: Any) -> None:
        if bool(opts["test"]) == bool(opts["cv"]):
            raise CommandError("Give either --test FILE or --cv K (not both).")
        threshold = settings.CASCADE_ESCALATE_ENTROPY if opts["threshold"] is None else opts["threshold"]
        # The benchmark's own taxonomy: the evaluation must not depend on what the database holds.
        taxonomy, safe_label = kuaimod_taxonomy(), SAFE_LABEL
        labels = taxonomy_labels(taxonomy, safe_label)
        started = time.perf_counter()
        try:
            train = self._read(opts["train"], labels).records
            if opts["cv"]:
                mode = f"{opts['cv']}-fold cross-validation on {opts['train'].name} (pooled out-of-fold)"
                result = stage1_cross_validate(
                    records=train,
                    folds=opts["cv"],
                    taxonomy=taxonomy,
                    safe_label=safe_label,
                    threshold=threshold,
                    seed=opts["seed"],
                )
                n_test = len(train)
            else:
                test = self._read(opts["test"], labels).records
                mode = f"train {opts['train'].name} ({len(train)}) -> test {opts['test'].name} ({len(test)})"
                result = stage1_evaluate(
                    train=train, test=test, taxonomy=taxonomy, safe_label=safe_label, threshold=threshold
                )
                n_test = len(test)
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        m = result.metrics
        m.update(
            {"mode": "cv" if opts["cv"] else "holdout", "folds": opts["cv"], "n_train": len(train), "n_test": n_test}
        )
        m["seconds"] = round(time.perf_counter() - started, 2)
        self._table(mode, m)
        self.stdout.write(json.dumps(m, ensure_ascii=False, sort_keys=True))

    def _table(self, mode: str, m: dict[str, Any]) -> None:
        w = self.stdout.write
        w(f"Stage 1 (char n-gram linear model) — {mode}; {m['n']} items, {m['n_violative']} violative")
        lo, hi = m["binary_accuracy_ci95"]
        w(f"  binary accuracy           {_pct(m['binary_accuracy'])}   (95% interval {_pct(lo)}–{_pct(hi)})")
        w(f"  violative  precision      {_pct(m['violative_precision'])}   recall {_pct(m['violative_recall'])}")
        w(f"  non-viol.  precision      {_pct(m['nonviolative_precision'])}   recall {_pct(m['nonviolative_recall'])}")
        w(f"  multi-class accuracy (16) {_pct(m['multiclass_accuracy'])}")
        w("  recall per major category (detected as violative / right major):")
        for major, recall in m["major_recall"].items():
            w(
                f"    {major:<12} n={m['major_support'][major]:<4} {_pct(recall)} / {_pct(m['major_recall_exact'][major])}"
            )
        w(
            f"  cascade @ entropy > {m['escalate_threshold']:.2f}: auto-decided {_pct(m['cascade_auto_share'])} "
            f"(binary accuracy {_pct(m['cascade_auto_binary_accuracy'])}), escalated {_pct(m['cascade_escalated_share'])}"
        )
        w(f"  ({m['seconds']:.1f} s)")
