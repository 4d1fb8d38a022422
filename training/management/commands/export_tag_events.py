"""`manage.py export_tag_events DIR [--eval-share X] [--hf]`: reviewers' tag events as a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Export accept/reject/add tag events as JSONL (train/eval by reproduction cluster) and optionally HF."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--eval-share", type=float, default=0.0)
        parser.add_argument("--hf", action="store_true", help="also write a Hugging Face DatasetDict (save_to_disk)")

    def handle(self, *args: Any, **opts: Any) -> None:
        from training.tag_data import EVAL_SHARE_MAX, tag_events_export

        share = opts["eval_share"]
        if not 0 <= share <= EVAL_SHARE_MAX:  # NaN too; the training screen's field has the same bounds
            raise CommandError(f"--eval-share is a share from 0 to {EVAL_SHARE_MAX}; {share} was given.")
        try:
            counts = tag_events_export(folder=opts["folder"], eval_share=share, hf=opts["hf"])
        except OSError as exc:  # a folder that cannot be made or written: said, not a traceback
            raise CommandError(f"Cannot write to {opts['folder']}: {exc.strerror or exc}.") from exc
        self.stdout.write(", ".join(f"{n} {split} rows" for split, n in counts.items()) + f" in {opts['folder']}")
