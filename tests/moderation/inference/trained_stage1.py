"""One stage-1 model trained for a whole test class rather than for each of its tests.

Every test that needs "a cascade trained on the 24 KuaiMod sample items" imported the items and trained stage 1 again
(nested inner folds, saved to media storage): over a second of CPU each, the same model every time. Built once for
the class instead, its rows in the class's rolled-back transaction (``tests/module_rows.py``): what a test changes
(a threshold, a target, a retraining under another name, new labels) is undone when the test ends, and the rows are
gone before the next class or module. The model file and the MODELS_DIR cache live in a folder of the class's own,
under settings kept for the class. A test that retrains under the same name (it would replace the shared file) trains
its own model instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import override_settings

from moderation.inference.cascade_models import CascadeModel
from moderation.inference.kuaimod import kuaimod_import
from moderation.inference.services import cascade_train
from tests.factories import PolicyVersionFactory
from tests.moderation.inference.kuaimod_samples import write_split
from tests.module_rows import refuse_transactional, rows_for_the_module


@contextmanager
def stage1_trained_once(
    tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any, **train: Any
) -> Iterator[CascadeModel]:
    """A policy version, the 24 sample items imported and stage 1 trained on them as ``stage1`` with ``train``'s
    routing (``cascade_train``), with MODELS_DIR and MEDIA_ROOT in a folder of its own while it is open."""
    folder = tmp_path_factory.mktemp("stage1-once")

    def build() -> CascadeModel:
        PolicyVersionFactory()
        kuaimod_import(path=write_split(folder / "train.jsonl", start=0, take=slice(0, 12)))
        return cascade_train(name="stage1", **train)

    # MEDIA_ROOT: shared artifacts live in media storage.
    with (
        override_settings(MODELS_DIR=folder / "models", MEDIA_ROOT=folder / "media"),
        rows_for_the_module(django_db_blocker, build) as model,
    ):
        yield model


def stage1_for_the_test(request: pytest.FixtureRequest, model: CascadeModel) -> CascadeModel:
    """The class's model read afresh for this test (an earlier test's ``refresh_from_db`` saw its own changes)."""
    return refuse_transactional(request, CascadeModel.objects.get(pk=model.pk))
