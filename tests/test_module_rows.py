"""``tests/module_rows.py``: module-wide rows are undone when the module is done, and a transactional test is refused
them with the reason."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.factories import UserFactory
from tests.module_rows import refuse_transactional, rows_for_the_module


@pytest.mark.django_db
def test_the_modules_rows_are_there_inside_and_gone_after(django_db_blocker: Any) -> None:
    with rows_for_the_module(django_db_blocker, lambda: UserFactory(username="module-wide")) as user:
        assert User.objects.filter(pk=user.pk, username="module-wide").exists()
    assert not User.objects.filter(username="module-wide").exists()


def _request(fixturenames: tuple[str, ...], **marker: Any) -> Any:
    mark = pytest.mark.django_db(**marker).mark
    return SimpleNamespace(
        node=SimpleNamespace(nodeid="t::x", get_closest_marker=lambda name: mark if name == "django_db" else None),
        fixturenames=list(fixturenames),
    )


@pytest.mark.parametrize(
    ("fixturenames", "marker"),
    [((), {"transaction": True}), (("live_server",), {}), (("transactional_db",), {}), ((), {"reset_sequences": True})],
)
def test_a_transactional_test_is_refused_the_modules_rows(
    fixturenames: tuple[str, ...], marker: dict[str, Any]
) -> None:
    with pytest.raises(pytest.fail.Exception, match="transactional"):
        refuse_transactional(_request(fixturenames, **marker), {"rows": 1})


def test_a_test_in_the_tests_transaction_gets_them() -> None:
    rows = {"rows": 1}
    assert refuse_transactional(_request(("db", "client")), rows) is rows
