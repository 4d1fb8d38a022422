"""`manage.py evaluate --train FILE (--test FILE | --cv K [--nested] | --holdout-fraction F)`: score stage 1.

Works from KuaiMod-format files alone. The last line of output is one JSON object with every number.
Which number is unbiased: ``--test`` on a file nothing was tuned on, ``--cv K --nested`` (every choice
made on inner folds, the outer folds reported) and ``--holdout-fraction`` (a locked slice scored once).
Plain ``--cv K`` scores one fixed configuration; it is optimistic if that configuration was picked by
looking at these same folds.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.inference.evaluation import (
    Routing,
    Stage1Evaluation,
    stage1_cross_validate,
    stage1_evaluate,
    stage1_holdout,
)
from moderation.inference.kuaimod import KuaiModFile, kuaimod_read, taxonomy_labels
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' rows for one target: the median of each number, and its per-seed values."""
    out: dict[str, Any] = {"target": rows[0]["target"]}
    for key in ("auto_share", "auto_binary_accuracy", "oracle_coverage"):
        values = [row[key] for row in rows if row[key] is not None]
        out[key] = statistics.median(values) if values else None
        out[f"{key}_per_seed"] = [row[key] for row in rows]
    return out


class Command(BaseCommand):
    help = (
        "Train the cascade's stage-1 classifier on one KuaiMod-format file and report KuaiMod's metrics on "
        "another (--test), by nested cross-validation (--cv K --nested), or on a locked slice (--holdout-fraction)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--train", type=Path, required=True)
        parser.add_argument("--test", type=Path)
        parser.add_argument("--cv", type=int, help="stratified K-fold cross-validation over --train")
        parser.add_argument(
            "--nested", action="store_true", help="with --cv: choose the model on inner folds only (unbiased)"
        )
        parser.add_argument("--holdout-fraction", type=float, help="lock this share of --train, score it once")
        parser.add_argument("--threshold", type=float, default=None, help="route by a fixed escalation entropy")
        parser.add_argument(
            "--target-accuracy",
            type=float,
            default=None,
            help="route by target accuracy (default CASCADE_TARGET_ACCURACY), cut chosen on inner folds",
        )
        parser.add_argument("--frames", action="store_true", help="also feed the frame count (benchmark artifact)")
        parser.add_argument("--seed", type=int, default=0, help="fold shuffling seed")
        parser.add_argument("--repeats", type=int, default=1, help="with --cv: seeds seed..seed+R-1, median reported")

    def _read(self, path: Path, labels: list[str]) -> KuaiModFile:
        parsed = kuaimod_read(path, labels=labels)
        for problem in parsed.problems:
            self.stderr.write(f"{path.name} line {problem.line}: {problem.reason} (skipped)")
        return parsed

    def handle(self, *args: Any, **opts: Any) -> None:
        modes = [m for m in ("test", "cv", "holdout_fraction") if opts[m]]
        if len(modes) != 1:
            raise CommandError("Give exactly one of --test FILE, --cv K, --holdout-fraction F.")
        if opts["nested"] and not opts["cv"]:
            raise CommandError("--nested goes with --cv K.")
        if opts["threshold"] is not None and opts["target_accuracy"] is not None:
            raise CommandError("Give --threshold or --target-accuracy, not both.")
        if opts["repeats"] < 1 or (opts["repeats"] > 1 and not opts["cv"]):
            raise CommandError("--repeats N (N >= 1) goes with --cv K.")
        # The benchmark's own taxonomy: the evaluation must not depend on what the database holds.
        taxonomy, safe_label = kuaimod_taxonomy(), SAFE_LABEL
        labels = taxonomy_labels(taxonomy, safe_label)
        started = time.perf_counter()
        try:
            if opts["threshold"] is not None:
                routing = Routing(threshold=opts["threshold"])
            else:
                routing = Routing(target_accuracy=opts["target_accuracy"] or settings.CASCADE_TARGET_ACCURACY)
            train = self._read(opts["train"], labels).records
            common: dict[str, Any] = {
                "taxonomy": taxonomy,
                "safe_label": safe_label,
                "routing": routing,
                "frames": opts["frames"],
            }
            runs: list[Stage1Evaluation] = []
            if opts["cv"]:
                kind = "nested " if opts["nested"] else ""
                mode = f"{kind}{opts['cv']}-fold cross-validation on {opts['train'].name} (pooled outer folds)"
                for seed in range(opts["seed"], opts["seed"] + opts["repeats"]):
                    runs.append(
                        stage1_cross_validate(
                            records=train, folds=opts["cv"], seed=seed, nested=opts["nested"], **common
                        )
                    )
                n_test = len(train)
            elif opts["holdout_fraction"]:
                mode = f"locked {opts['holdout_fraction']:.0%} of {opts['train'].name}, scored once"
                runs.append(
                    stage1_holdout(records=train, fraction=opts["holdout_fraction"], seed=opts["seed"], **common)
                )
                n_test = runs[0].metrics["n_locked"]
            else:
                test = self._read(opts["test"], labels).records
                mode = f"train {opts['train'].name} ({len(train)}) -> test {opts['test'].name} ({len(test)})"
                runs.append(stage1_evaluate(train=train, test=test, seed=opts["seed"], **common))
                n_test = len(test)
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        m = self._combine(runs)
        m.update(
            {
                "mode": "cv" if opts["cv"] else ("holdout_fraction" if opts["holdout_fraction"] else "holdout"),
                "nested": bool(opts["nested"]),
                "folds": opts["cv"],
                "frames": opts["frames"],
                "n_train": m.get("n_train", len(train)),
                "n_test": n_test,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        self._table(mode, m)
        self.stdout.write(json.dumps(m, ensure_ascii=False, sort_keys=True))

    @staticmethod
    def _combine(runs: list[Stage1Evaluation]) -> dict[str, Any]:
        """One run: its metrics. Several seeds: the median seed's metrics (by binary accuracy), plus the
        median, range and per-seed values of the headline numbers."""
        if len(runs) == 1:
            return dict(runs[0].metrics)
        ordered = sorted(runs, key=lambda r: r.metrics["binary_accuracy"])
        m = dict(ordered[(len(ordered) - 1) // 2].metrics)
        for key in ("binary_accuracy", "cascade_auto_share", "cascade_auto_binary_accuracy", "multiclass_accuracy"):
            values = [r.metrics[key] for r in runs if r.metrics[key] is not None]
            if values:
                m[key] = statistics.median(values)
                m[f"{key}_range"] = [min(values), max(values)]
                m[f"{key}_per_seed"] = values
        m["cascade_escalated_share"] = 1.0 - m["cascade_auto_share"]
        m["cascade_at_targets"] = [
            _median_row(
                [next(r for r in run.metrics["cascade_at_targets"] if r["target"] == row["target"]) for run in runs]
            )
            for row in runs[0].metrics["cascade_at_targets"]
        ]
        m["repeats"] = len(runs)
        return m

    def _table(self, mode: str, m: dict[str, Any]) -> None:
        w = self.stdout.write
        w(f"Stage 1 (char n-gram linear model) — {mode}; {m['n']} items, {m['n_violative']} violative")
        lo, hi = m["binary_accuracy_ci95"]
        spread = ""
        if "binary_accuracy_range" in m:
            a, b = m["binary_accuracy_range"]
            spread = f"; median of {m['repeats']} seeds, range {_pct(a)}–{_pct(b)}"
        w(f"  binary accuracy           {_pct(m['binary_accuracy'])}   (95% interval {_pct(lo)}–{_pct(hi)}{spread})")
        w(f"  violative  precision      {_pct(m['violative_precision'])}   recall {_pct(m['violative_recall'])}")
        w(f"  non-viol.  precision      {_pct(m['nonviolative_precision'])}   recall {_pct(m['nonviolative_recall'])}")
        w(f"  multi-class accuracy (16) {_pct(m['multiclass_accuracy'])}")
        w(f"  calibration error (ECE)   {m['calibration_error']:.3f}")
        w(
            "  reliability (predicted → observed violative, n): "
            + ", ".join(f"{r['predicted']:.2f}→{r['observed']:.2f} ({r['n']})" for r in m.get("reliability", []))
        )
        if m.get("chosen"):
            w(f"  model chosen on inner folds: {m['chosen']}")
        for fold in m.get("folds_detail", []):
            w(
                f"    outer fold {fold['fold']}: chose {fold['chosen']}, outer binary accuracy {_pct(fold['outer_binary_accuracy'])}"
            )
        w("  recall per major category (detected as violative / right major):")
        for major, recall in m["major_recall"].items():
            w(
                f"    {major:<12} n={m['major_support'][major]:<4} {_pct(recall)} / {_pct(m['major_recall_exact'][major])}"
            )
        routing = (
            f"target accuracy {m['target_accuracy']:.2f} (cut chosen on inner folds)"
            if m.get("target_accuracy") is not None
            else f"entropy > {m['escalate_threshold']:.2f}"
        )
        w(
            f"  cascade @ {routing}: auto-decided {_pct(m['cascade_auto_share'])} "
            f"(binary accuracy {_pct(m['cascade_auto_binary_accuracy'])}), escalated {_pct(m['cascade_escalated_share'])}"
        )
        for row in m.get("cascade_at_targets", []):
            w(
                f"  cascade @ target {row['target']:.2f}: auto-decided {_pct(row['auto_share'])} at "
                f"{_pct(row['auto_binary_accuracy'])} (cut from inner folds); the scored items' own curve "
                f"allows at most {_pct(row['oracle_coverage'])}"
            )
        w(f"  ({m['seconds']:.1f} s)")
