"""The tab's icon: a small static favicon named by every page, and /favicon.ico answered."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from PIL import Image


@pytest.mark.django_db
def test_favicon_ico_leads_to_a_small_static_icon_that_every_screen_names(client_as):
    """/favicon.ico was a 404 (a log line and a browser console error on screens that do not name an icon, the
    admin's among them); the workbench's own pages named an empty ``data:,`` icon: no icon in the tab."""
    answer = Client().get("/favicon.ico")  # browsers ask before anyone signs in

    assert answer.status_code == 302 and answer["Location"] == "/static/favicon.ico"
    found = finders.find("favicon.ico")
    assert found is not None
    with Image.open(found) as icon:
        assert icon.format == "ICO" and icon.size[0] <= 64
    for url in ("/", "/api/"):
        html = client_as("moderator").get(url, HTTP_ACCEPT="text/html").content.decode()
        assert '<link rel="icon" href="/static/favicon.ico"' in html, url
