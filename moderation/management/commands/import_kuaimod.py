"""`manage.py import_kuaimod FILE`: import KuaiMod-format JSONL as text-only items with trusted labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.inference.kuaimod import kuaimod_import


class Command(BaseCommand):
    help = (
        "Import a KuaiMod-format JSONL file (pid, tag, title, OCR, ASR) as text-only videos with imported labels. "
        "Idempotent by pid; bad lines are reported and skipped."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--decide",
            action="store_true",
            help=(
                "queue the serving model's decision of every record not decided yet, so routing puts it into the "
                "review queues (and opens it to their reviewers and labelers); without it, imported records are "
                "seen by admins only, for evaluation and training"
            ),
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            report = kuaimod_import(path=opts["file"], decide=opts["decide"])
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
        for problem in report.problems:
            self.stderr.write(f"line {problem.line}: {problem.reason}")
        if report.unknown_tags:
            tags = ", ".join(f"{tag} ({n})" for tag, n in sorted(report.unknown_tags.items()))
            self.stderr.write(f"unknown tags: {tags}")
        self.stdout.write(
            f"imported {report.imported} records: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged; {len(report.problems)} lines skipped"
        )
        if opts["decide"]:
            self.stdout.write(f"queued {report.queued} records for the model's decision (the infer queue)")
