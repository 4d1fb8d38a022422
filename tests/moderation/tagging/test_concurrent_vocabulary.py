"""Two vocabulary imports at once into an empty vocabulary (two curators' files, the screen's import beside the
``import_tags`` command): before, both numbered the very first version 1 (no row yet to lock) and the second ended
in an IntegrityError. Now the second waits for the first, then imports as version 2 over the first's tags."""

from __future__ import annotations

import pytest

from moderation.tagging.models import Tag, VocabularyVersion
from moderation.tagging.services import ImportReport, tags_import
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_second_of_two_first_imports_waits_and_becomes_version_2() -> None:
    raced = race(
        lambda: tags_import(lines=["美食", "旅行"], note="curator A"),
        lambda: tags_import(lines=["美食\tfood", "宠物"], note="curator B"),
    )

    assert isinstance(raced.first, ImportReport) and isinstance(raced.second, ImportReport), raced.second
    assert raced.second_waited
    assert raced.first.version.number == 1 and raced.first.created == 2
    # It read the first's tags once it went on: 美食 gained an alias, not a second row.
    assert raced.second.version.number == 2 and raced.second.created == 1 and raced.second.updated == 1
    assert list(VocabularyVersion.objects.order_by("number").values_list("number", "note")) == [
        (1, "curator A"),
        (2, "curator B"),
    ]
    assert Tag.objects.get(name="美食").aliases == ["food"]
    assert Tag.objects.count() == 3
