"""The structured policy editor's controls each have a name that says which row they are of: a screen reader heard
"Tag 1 key", "Tag 1 keywords" in every category alike ("Key", "remove this category" and "+ Add tag" too), and
nothing said which tag or category it was on."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from moderation.policies.models import PolicyVersion

pytestmark = pytest.mark.django_db


class _Names(HTMLParser):
    """The accessible name of each visible control of the structured editor (``form.policy-editor``), as a browser
    computes it for this markup: ``aria-label``, else the text of its ``<label>`` (its visually hidden part too),
    else a button's text. ``(name, html name)`` per control, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.in_form = False
        self.labels: list[list[str]] = []  # the open labels' text
        self.pending: list[tuple[str, int]] = []  # (html name, index in names) of controls named by their label
        self.button: list[str] | None = None
        self.button_name = ""
        self.names: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and "policy-editor" in (a.get("class") or ""):
            self.in_form = True
        if not self.in_form:
            return
        if tag == "label":
            self.labels.append([])
        elif tag in ("input", "textarea", "select", "button"):
            if a.get("type") == "hidden" or a.get("aria-hidden") == "true":
                return
            if a.get("aria-label"):
                self.names.append((a["aria-label"] or "", a.get("name") or ""))
            elif tag == "button":
                self.button, self.button_name = [], a.get("name") or ""
            elif self.labels:
                self.names.append(("", a.get("name") or ""))
                self.pending.append((a.get("name") or "", len(self.names) - 1))
            else:
                self.names.append(("(no name)", a.get("name") or ""))

    def handle_data(self, data: str) -> None:
        for text in self.labels:
            text.append(data)
        if self.button is not None:
            self.button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "label" and self.labels:
            text = " ".join("".join(self.labels.pop()).split())
            for _name, index in self.pending:
                self.names[index] = (text, self.names[index][1])
            self.pending = []
        elif tag == "button" and self.button is not None:
            self.names.append((" ".join("".join(self.button).split()), self.button_name))
            self.button = None


def _names(html: str) -> list[tuple[str, str]]:
    parser = _Names()
    parser.feed(html)
    return parser.names


def test_every_control_of_the_policy_editor_has_a_name_saying_its_row(policy_version, client_as):
    html = client_as("policy_editor").get(reverse("moderation:policy_edit", args=[policy_version.policy_id])).text
    names = _names(html)
    spoken = [name for name, _field in names]

    assert len(names) > 60 and "(no name)" not in spoken and "" not in spoken
    assert not [
        n for n in spoken if re.fullmatch(r"Remove tag \d+|Tag \d+ [a-zA-Z ]+", n)
    ]  # "Tag 1 key": alike in every category
    duplicates = sorted({n for n in spoken if spoken.count(n) > 1})
    assert duplicates == []
    by_field = dict((field, name) for name, field in names)
    assert by_field["c0t0-key"] == "Key of tag 1 “Criminal behaviour” in category 1 “Law & social safety”"
    assert by_field["c2t1-keywords"] == (
        "Keywords of tag 2 “Steering users to private deals” in category 3 “Commercial behaviour”, comma-separated"
    )
    assert (
        by_field["c1t0-remove"] == "Remove tag 1 “Sexually explicit & vulgar” in category 2 “Content quality & ethics”"
    )
    assert by_field["c3-key"] == "Key of category 4 “IP & labelling”"
    assert by_field["c3-remove"] == "remove this category (category 4 “IP & labelling”)"
    assert "+ Add tag to category 4 “IP & labelling”" in spoken
    assert "low severity allowed for tag 2 “Unauthorised reproduction / plagiarism” in category 4 “IP & labelling”" in (
        spoken
    )


def test_a_new_row_and_a_blm_policy_are_named_in_their_own_words(policy_version, client_as):
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy_id])
    html = client.post(url, {**_posted(policy_version), "action": "add_tag:0"}).text
    added = dict((field, name) for name, field in _names(html))
    assert added["c0t5-key"] == "Key of new tag 6 in category 1 “Law & social safety”"

    PolicyVersion.objects.filter(pk=policy_version.pk).update(output_format="blm")
    blm = dict((field, name) for name, field in _names(client.get(url).text))
    assert (
        blm["c0t0-name"]
        == "English name of violation type 1 “Criminal behaviour” in risk scene 1 “Law & social safety”"
    )


def _posted(version: PolicyVersion) -> dict[str, str]:
    """The structured form as the page sends it, unchanged."""
    data = {"mode": "structured", "base": str(version.pk), "categories": str(len(version.taxonomy))}
    for i, category in enumerate(version.taxonomy):
        data |= {f"c{i}-key": category["key"], f"c{i}-name": category["name"], f"c{i}-tags": str(len(category["tags"]))}
        for j, tag in enumerate(category["tags"]):
            data |= {f"c{i}t{j}-key": tag["key"], f"c{i}t{j}-name": tag["name"]}
    return data
