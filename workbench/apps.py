from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class WorkbenchConfig(AppConfig):
    name = "workbench"

    def ready(self) -> None:
        import workbench.checks  # noqa: F401  (registers the deployment checks)
        from workbench.db import install_prepare_marked
        from workbench.roles import sync_role_groups
        from workbench.usernames import install_username_lookalike_validator

        # Permissions only exist after every app migrated; groups are synced then.
        post_migrate.connect(sync_role_groups, dispatch_uid="workbench.sync_role_groups")
        # The statements that carry the visibility rule run prepared (``workbench/db.py``).
        connection_created.connect(install_prepare_marked, dispatch_uid="workbench.prepare_marked")
        # Look-alike usernames ("аdmin" with a Cyrillic "а") are refused wherever a user is made (workbench/usernames.py).
        install_username_lookalike_validator()
