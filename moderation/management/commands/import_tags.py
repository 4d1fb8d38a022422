"""`manage.py import_tags FILE [--hierarchy FILE]`: seed or extend the tag vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from moderation.errors import ModerationError
from moderation.tagging.files import read_lines
from moderation.tagging.models import Tag
from moderation.tagging.services import ImportReport, tags_embed_missing, tags_import, tags_import_hierarchy

# Chinese names with the English aliases the demo videos' titles and speech use (`generate_demo`), so the tags
# queue and panel have candidates on a fresh install.
DEMO_VOCABULARY = Path(__file__).resolve().parents[2] / "tagging" / "demo_vocabulary.txt"


class Command(BaseCommand):
    help = (
        "Import a tag vocabulary: one tag per line, 'name' or 'name<TAB>alias, alias'. Bad lines are reported "
        "per line and skipped; the rest is one new vocabulary version. --hierarchy FILE sets parents from "
        "'child<TAB>parent' lines. Tag embeddings are computed on the media worker, or here with --embed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, nargs="?")
        parser.add_argument("--hierarchy", type=Path, help="two-column file: child<TAB>parent")
        parser.add_argument("--embed", action="store_true", help="compute missing tag embeddings in this process")
        parser.add_argument(
            "--demo",
            action="store_true",
            help="when the vocabulary is empty, import the small demo vocabulary (tags for the demo videos)",
        )

    def _report(self, report: ImportReport, decode_errors: list[str]) -> None:
        for line in report.notes:
            self.stdout.write(line)
        for line in report.problems(decode_errors):
            self.stderr.write(line)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["demo"]:
            if opts["file"] is not None or opts["hierarchy"] is not None:
                raise CommandError("--demo imports the demo vocabulary; give no file with it.")
            if Tag.objects.exists():
                self.stdout.write("The tag vocabulary is not empty: the demo vocabulary is not imported.")
                return
            opts["file"] = DEMO_VOCABULARY
        if opts["file"] is None and opts["hierarchy"] is None:
            raise CommandError("Give a vocabulary file, --hierarchy FILE, or both.")
        try:
            if opts["file"] is not None:
                decode_errors: list[str] = []
                report = tags_import(lines=read_lines(opts["file"], decode_errors), note=f"import of {opts['file']}")
                self._report(report, decode_errors)
                self.stdout.write(report.tags_summary())
            if opts["hierarchy"] is not None:
                decode_errors = []
                report = tags_import_hierarchy(lines=read_lines(opts["hierarchy"], decode_errors))
                self._report(report, decode_errors)
                self.stdout.write(report.parents_summary())
            if opts["embed"]:
                self.stdout.write(f"{tags_embed_missing()} tag embeddings computed")
        except ModerationError as exc:
            raise CommandError(str(exc)) from exc
