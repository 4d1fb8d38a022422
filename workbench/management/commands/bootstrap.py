from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from workbench.roles import ROLES, sync_role_groups

DEMO_PASSWORD = "workbench-demo"  # noqa: S105 (printed on start; for the local demo only)


class Command(BaseCommand):
    help = (
        "Create the role groups, the first policy, the default review queue's senior queue and (with --demo-users) "
        "one demo user per role and, when the tag vocabulary is empty, the demo one."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--demo-users", action="store_true")
        parser.add_argument(
            "--demo-password",
            default=DEMO_PASSWORD,
            help=f"the demo users' password (default {DEMO_PASSWORD!r}); a demo user still holding the default "
            "gets this one instead",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        sync_role_groups()
        call_command("seed_policy", verbosity=0)
        # The default queue's senior queue: without it a fresh start offered no escalation at all.
        call_command("seed_queues", verbosity=0)
        if not opts["demo_users"]:
            return
        password = opts["demo_password"] or DEMO_PASSWORD
        self.stdout.write(f"Demo users (password for all: {password}):")
        for role in ROLES:
            user, created = User.objects.get_or_create(username=role)
            if created:
                user.set_password(password)
                user.is_staff = role == "admin"
                user.is_superuser = role == "admin"
                user.save()
            elif password != DEMO_PASSWORD and user.check_password(DEMO_PASSWORD):
                # Made by an earlier start with the password everyone can read in the README; a password its owner
                # chose since is left alone.
                user.set_password(password)
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
            self.stdout.write(f"  {role:<14} username={role}")
        call_command("import_tags", demo=True, stdout=self.stdout)
