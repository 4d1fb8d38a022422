"""`manage.py ingest_folder PATH`: ingest every video under a server folder inside MEDIA_IMPORT_ROOTS."""

from __future__ import annotations

from moderation.management.commands._ingest import BulkIngestCommand
from moderation.media.ingest import ImportReport, video_ingest_folder


class Command(BulkIngestCommand):
    help = "Ingest all video files under a folder (confined to MEDIA_IMPORT_ROOTS) and queue them."
    source = "folder"

    def ingest(self, source: str) -> ImportReport:
        return video_ingest_folder(folder=source)
