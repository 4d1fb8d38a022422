"""DRF's ``drf_create_token``, replaced: DRF's command wrote a key in clear into its own table, which this API never
reads (users' tokens are ``workbench.ApiToken``, stored hashed, with an expiry and a scope), so the key it printed was
refused. This one refuses, naming ``create_api_token``. It takes DRF's arguments, so a script calling it the old way
reads the refusal rather than a usage error. (``rest_framework.authtoken`` stays installed for its migrations; it is
listed after our apps in INSTALLED_APPS so that this command, not DRF's, answers to the name.)"""

from __future__ import annotations

import shlex
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Refused here (its keys are not accepted by this API): use create_api_token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?")
        parser.add_argument("-r", "--reset", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        name = shlex.quote(opts["username"]) if opts.get("username") else "NAME"
        raise CommandError(
            "drf_create_token makes keys this API refuses (its tokens are stored hashed, with an expiry and a scope). "
            f"Use: manage.py create_api_token --user {name} --label 'what it is for' [--expires-days N] "
            "[--scope read|write] [--rotate]"
        )
