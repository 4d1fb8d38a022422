"""Walk hwalk19 (moderator, labeler, policy team and admin in Chromium at 1440x900 and 1024 px on ./run.sh's embedded
default): what a user tripped over, fixed. Each test fails without its fix."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_admin_index_says_policies_not_policys(make_user) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert ">Policies<" in page and "Policys" not in page
