"""`manage.py export_tag_events DIR [--eval-share X] [--hf]`: reviewers' tag events as a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Export accept/reject/add tag events as JSONL (train/eval by reproduction cluster) and optionally HF."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--eval-share", type=float, default=0.0)
        parser.add_argument("--hf", action="store_true", help="also write a Hugging Face DatasetDict (save_to_disk)")

    def handle(self, *args: Any, **opts: Any) -> None:
        from training.tag_data import tag_events_export

        counts = tag_events_export(folder=opts["folder"], eval_share=opts["eval_share"], hf=opts["hf"])
        self.stdout.write(", ".join(f"{n} {split} rows" for split, n in counts.items()) + f" in {opts['folder']}")
