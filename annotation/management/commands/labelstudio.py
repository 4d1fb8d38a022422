"""`manage.py labelstudio export|import`: Label Studio interop from the command line.

    manage.py labelstudio export --queue default --as labeler-name --url http://ls:8080 --token TOKEN --base-url https://workbench
    manage.py labelstudio import --project 12 --url http://ls:8080 --token TOKEN --as labeler-name

Every action runs as a workbench user (``--as``) and is held to what that user may do on the screens: an
export holds a queue only if they may see it (``labelstudio_export_queues``, the export screen's rule) and
needs the labeler role; an import records reviews only in queues they may work and corrections only from a
labeler.

The token is a Label Studio (legacy) API token; LABEL_STUDIO_URL / LABEL_STUDIO_TOKEN work too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from annotation.errors import AnnotationError
from annotation.labelstudio import (
    TagVideos,
    labelstudio_client,
    labelstudio_export_queue,
    labelstudio_export_tags,
    labelstudio_import_project,
    labelstudio_tag_videos,
)
from workbench.roles import Perm


class Command(BaseCommand):
    help = "Export a review queue to a Label Studio project, or import a project's annotations back."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["export", "export-tags", "import"])
        parser.add_argument("--url", default=settings.LABEL_STUDIO_URL)
        parser.add_argument("--token", default=settings.LABEL_STUDIO_TOKEN)
        parser.add_argument("--queue", default="default", help="export: the review queue's slug")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="export: where LS fetches media")
        parser.add_argument("--title", default="")
        parser.add_argument("--project", type=int, help="import: the Label Studio project id")
        parser.add_argument(
            "--as",
            dest="username",
            help="the workbench user this runs as (exports: what they may see; import: reviews by)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if not opts["url"] or not opts["token"]:
            raise CommandError("Give --url and --token (or LABEL_STUDIO_URL and LABEL_STUDIO_TOKEN).")
        if not opts["username"]:
            raise CommandError(f"{opts['action']} needs --as USERNAME: the workbench user it runs as.")
        user = User.objects.filter(username=opts["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active workbench user named {opts['username']!r}.")
        if opts["action"] == "export-tags" and not user.has_perm(Perm.CORRECT_COT):
            raise CommandError(f"{user.username} may not export: the export needs the labeler role.")
        client = labelstudio_client(url=opts["url"], api_key=opts["token"])
        try:
            if opts["action"] == "export-tags":
                # Videos with tag suggestions that no reviewer has tagged yet (at most 500).
                ids = list(labelstudio_tag_videos(which=TagVideos.AWAITING).values_list("pk", flat=True)[:500])
                project_id, count = labelstudio_export_tags(
                    client=client, video_ids=ids, base_url=opts["base_url"], title=opts["title"]
                )
                self.stdout.write(f"Exported {count} videos to tag to Label Studio project {project_id}.")
                return
            if opts["action"] == "export":
                project_id, count = labelstudio_export_queue(
                    client=client, queue=opts["queue"], by=user, base_url=opts["base_url"], title=opts["title"]
                )
                self.stdout.write(f"Exported {count} items to Label Studio project {project_id}.")
                return
            if not opts["project"]:
                raise CommandError("import needs --project and --as USERNAME.")
            result = labelstudio_import_project(client=client, ls_url=opts["url"], project_id=opts["project"], by=user)
        except (AnnotationError, ConnectionError) as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(_labelstudio_failure(exc, url=opts["url"])) from exc
        self.stdout.write(
            f"Project {opts['project']}: {result.imported} annotations imported, {result.already} already imported"
            + (f", {len(result.skipped)} skipped:" if result.skipped else ".")
        )
        for skipped in result.skipped[:50]:
            self.stdout.write(f"  task {skipped['task']}, annotation {skipped['annotation']}: {skipped['reason']}")
        if len(result.skipped) > 50:
            self.stdout.write(f"  … and {len(result.skipped) - 50} more.")


def _labelstudio_failure(exc: Exception, *, url: str) -> str:
    """What an unreachable or refusing Label Studio means, in words (the SDK raises httpx's transport
    errors and its own ``ApiError``); anything else is re-raised as the bug it is."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, httpx.HTTPError):
        return f"Cannot reach Label Studio at {url}: {type(exc).__name__}: {str(exc) or 'no answer'}. Check --url."
    if isinstance(exc, ApiError):
        hint = " Check --token (a legacy API token of a Label Studio user)." if exc.status_code in (401, 403) else ""
        return f"Label Studio at {url} refused the request (HTTP {exc.status_code}): {str(exc.body)[:300]}.{hint}"
    raise exc
