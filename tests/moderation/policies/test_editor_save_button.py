"""Walked the policy editor at 1440x900: "Save as new draft", the one button that keeps the work, looked like the
dozen "+ Add tag" buttons above it (and the JSON editor's save like its neighbours): both are the page's primary
button now."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_editors_save_buttons_are_its_primary_ones(policy_version, client_as):
    page = client_as("policy_editor").get(reverse("moderation:policy_edit", args=[policy_version.policy.pk]))
    html = page.content.decode()
    primary = re.findall(r'<button type="submit"[^>]*class="primary"[^>]*>([^<]+)</button>', html)
    assert primary == ["Save JSON as new draft", "Save as new draft"]
    assert not re.search(r'<button[^>]*class="primary"[^>]*>\+ Add', html)
