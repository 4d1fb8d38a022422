"""Two stage-1 trainings at once outside the dashboard (the ``train_cascade`` command beside beat's retrain, or two
commands): before, the second's activation hit ``one_active_cascade_model`` and ended in an IntegrityError
traceback. Now trainings run one at a time: one started while another runs is skipped with a message saying so
(and a log line), and activations that do meet leave one active model."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from moderation.inference.cascade_models import CascadeModel, CascadeTraining
from moderation.inference.kuaimod import kuaimod_import
from moderation.inference.services import CASCADE_TRAINING_BUSY, CASCADE_TRAINING_LOCK, cascade_train
from moderation.inference.tasks import train_cascade
from tests.factories import UserFactory
from tests.moderation.inference.kuaimod_samples import write_split
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def labelled(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MODELS_DIR = tmp_path / "models"
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))


def test_two_activations_at_once_leave_one_active_model_not_an_integrity_error(labelled) -> None:
    raced = race(
        lambda: cascade_train(name="from-beat", threshold=0.8),
        lambda: cascade_train(name="from-command", threshold=0.8),
    )

    assert isinstance(raced.first, CascadeModel), raced.first
    assert isinstance(raced.second, CascadeModel), raced.second  # was: IntegrityError (one_active_cascade_model)
    assert raced.second_waited
    assert list(CascadeModel.objects.filter(is_active=True).values_list("name", flat=True)) == ["from-command"]


def test_a_training_started_while_another_runs_is_skipped_with_a_message(labelled, caplog) -> None:
    queued = CascadeTraining.objects.create(name="stage1", threshold=0.8, trigger=CascadeTraining.Trigger.BEAT)

    def another_training_runs() -> None:  # holds what a running training holds, until the race ends
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_lock({CASCADE_TRAINING_LOCK})")

    def command_then_beat() -> tuple[str, str]:
        try:
            call_command("train_cascade", name="stage1", threshold=0.8)
        except CommandError as exc:
            said = str(exc)
        else:
            said = "trained"
        return said, train_cascade(queued.pk) or ""

    raced = race(another_training_runs, command_then_beat)

    assert raced.second == (CASCADE_TRAINING_BUSY, "skipped"), raced.second  # was "failed": read as an error
    assert "running already" in CASCADE_TRAINING_BUSY and "skipped" in CASCADE_TRAINING_BUSY
    assert not CascadeModel.objects.exists()
    queued.refresh_from_db()
    assert queued.status == CascadeTraining.Status.SKIPPED
    assert queued.error == CASCADE_TRAINING_BUSY  # the dashboard shows why
    admin = Client()
    admin.force_login(UserFactory(role="admin"))
    shown = admin.get(reverse("moderation:cascade") + "?part=training", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-training-status="skipped"' in shown and "Skipped: another training was running" in shown
    assert "failed" not in shown and "data-training-error" not in shown
    assert "skipped: another training is running" in caplog.text
    # Once it ended, the next one trains.
    assert cascade_train(name="stage1", threshold=0.8).is_active
