"""`manage.py ingest_manifest FILE.jsonl`: bulk import videos with their metadata and comments."""

from __future__ import annotations

from moderation.management.commands._ingest import BulkIngestCommand
from moderation.media.ingest import ImportReport, video_import_manifest


class Command(BulkIngestCommand):
    help = (
        "Import a JSONL manifest (id, video, title, description, uploader, comments, cover per line); "
        "idempotent by id; bad lines are reported and skipped."
    )
    source = "manifest"

    def ingest(self, source: str) -> ImportReport:
        return video_import_manifest(manifest=source)
