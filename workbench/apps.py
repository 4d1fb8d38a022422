from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WorkbenchConfig(AppConfig):
    name = "workbench"

    def ready(self) -> None:
        from workbench.roles import sync_role_groups

        # Permissions only exist after every app migrated; groups are synced then.
        post_migrate.connect(sync_role_groups, dispatch_uid="workbench.sync_role_groups")
