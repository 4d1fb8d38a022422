from __future__ import annotations

import pytest
from django.db import connection

from workbench.queues import TASK_ROUTES, TaskQueue


@pytest.mark.django_db
def test_embedded_postgres_has_pgvector():
    with connection.cursor() as cur:
        cur.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'")
        assert cur.fetchone() == ("vector",)
        cur.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
        assert cur.fetchone()[0] == pytest.approx(1.0)


@pytest.mark.django_db
def test_role_groups_exist_with_permissions():
    from django.contrib.auth.models import Group

    perms = {g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} for g in Group.objects.all()}
    assert perms["moderator"] == {"moderation.upload_video", "moderation.review_video"}
    assert perms["labeler"] == {"annotation.correct_cot"}
    assert perms["policy_editor"] == {"moderation.edit_policy"}
    assert "training.manage_training" in perms["admin"]


def test_every_task_is_routed_to_a_named_queue():
    from workbench.celery import app

    app.loader.import_default_modules()
    project_tasks = {name for name in app.tasks if not name.startswith("celery.")}
    assert project_tasks == set(TASK_ROUTES), "every project task must be routed in workbench/queues.py"
    for name, queue in TASK_ROUTES.items():
        assert app.amqp.router.route({}, name)["queue"].name == queue.value
    assert {q.value for q in TaskQueue} >= {"media", "infer", "train", "default"}
