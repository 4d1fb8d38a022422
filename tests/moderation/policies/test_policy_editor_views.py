"""The editor screens: structured and JSON edits, versions, diffs, publishing, and who may do what."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from moderation.policies.editor import editor_rows_from_taxonomy
from moderation.policies.models import PolicyVersion
from moderation.policies.services import policy_version_create_draft
from tests.factories import PolicyVersionFactory

pytestmark = pytest.mark.django_db


def _structured_post(taxonomy, **extra):  # type: ignore[no-untyped-def]
    """The POST body the structured editor sends for ``taxonomy`` (as the browser would)."""
    data: dict = {"mode": "structured", "categories": str(len(taxonomy)), "notes": "", "action": "save"}
    for i, cat in enumerate(editor_rows_from_taxonomy(taxonomy)):
        data |= {f"c{i}-key": cat.key, f"c{i}-name": cat.name, f"c{i}-tags": str(len(cat.tags))}
        for j, tag in enumerate(cat.tags):
            p = f"c{i}t{j}"
            data |= {
                f"{p}-key": tag.key,
                f"{p}-name": tag.name,
                f"{p}-keywords": tag.keywords,
                f"{p}-criteria": tag.criteria,
                f"{p}-severities": tag.severities,
            }
    return data | extra


def test_structured_edit_saves_a_new_draft_with_keywords_criteria_and_a_new_tag(policy_version, client_as):
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    page = client.get(url).content.decode()
    assert 'name="c2t1-keywords"' in page and "加微信, 私聊" in page

    # "Add tag" re-renders the form with one more (blank) row and saves nothing.
    data = _structured_post(policy_version.taxonomy, action="add_tag:2")
    resp = client.post(url, data)
    assert resp.status_code == 200 and 'name="c2t4-key"' in resp.content.decode()
    assert PolicyVersion.objects.count() == 1

    data = _structured_post(policy_version.taxonomy, notes="Signal is a messaging app too.")
    data["c2-tags"] = "5"
    data |= {
        "c2t4-key": "诱导关注",
        "c2t4-name": "Follow baiting",
        "c2t4-keywords": "关注我，follow me, ",
        "c2t4-criteria": "Asks viewers to follow in exchange for rewards.\n\n",
    }
    data["c2t1-keywords"] += ", signal"
    data["c3t1-remove"] = "on"  # drop "Unauthorised reproduction / plagiarism"
    resp = client.post(url, data)

    draft = PolicyVersion.objects.get(number=policy_version.number + 1)
    assert resp.status_code == 302 and resp["Location"] == reverse("moderation:policy_version", args=[draft.pk])
    assert draft.status == "draft" and not draft.is_active and draft.notes == "Signal is a messaging app too."
    commercial = {t["key"]: t for t in draft.taxonomy[2]["tags"]}
    assert commercial["引导私下交易"]["keywords"][-1] == "signal"
    assert commercial["诱导关注"] == {
        "key": "诱导关注",
        "name": "Follow baiting",
        "keywords": ["关注我", "follow me"],
        "criteria": ["Asks viewers to follow in exchange for rewards."],
    }
    assert "盗用抄袭作品" not in {t["key"] for c in draft.taxonomy for t in c["tags"]}
    policy_version.refresh_from_db()
    assert "signal" not in policy_version.taxonomy[2]["tags"][1]["keywords"]


def test_saving_the_editor_without_a_change_saves_no_draft(policy_version, client_as):
    """Save pressed on the untouched editor made a draft identical to the active version ("Saved as draft
    v5; preview its impact, then publish it"): a copy to publish, changing nothing but the number."""
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])

    resp = client.post(url, _structured_post(policy_version.taxonomy, notes="just looking"))

    assert resp.status_code == 400
    assert f"Nothing changed from the active version v{policy_version.number}: no draft saved." in resp.content.decode()
    assert PolicyVersion.objects.count() == 1
    as_json = {"mode": "json", "taxonomy_json": json.dumps(policy_version.taxonomy), "notes": ""}
    again = client.post(url, as_json)
    assert again.status_code == 400 and "Nothing changed" in again.content.decode()
    assert PolicyVersion.objects.count() == 1


def test_invalid_edits_show_every_error_inline_and_save_nothing(policy_version, client_as):
    client = client_as("admin")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    data = _structured_post(policy_version.taxonomy)
    data["c0t1-key"] = data["c0t0-key"]
    data["c1-name"] = ""
    resp = client.post(url, data)
    html = resp.content.decode()
    assert resp.status_code == 400 and "The draft was not saved" in html
    assert "key &#x27;违法犯罪&#x27; is already used by" in html
    assert "Category 2 (内容质量与伦理): name must not be empty." in html

    resp = client.post(url, {"mode": "json", "taxonomy_json": '[{"key": "x", ', "notes": "n"})
    assert resp.status_code == 400 and "Not valid JSON" in resp.content.decode()

    taxonomy = [
        {"key": "A", "name": "A", "tags": [{"key": "t", "name": "T", "keywords": ["k"], "severities": ["huge"]}]}
    ]
    resp = client.post(url, {"mode": "json", "taxonomy_json": json.dumps(taxonomy)})
    html = resp.content.decode()
    assert resp.status_code == 400 and "unknown severity &#x27;huge&#x27;" in html
    assert "&quot;huge&quot;" in html  # the textarea keeps what the editor typed
    assert PolicyVersion.objects.count() == 1

    taxonomy[0]["tags"][0]["severities"] = ["high"]
    resp = client.post(url, {"mode": "json", "taxonomy_json": json.dumps(taxonomy), "notes": "rewrite"})
    assert resp.status_code == 302
    assert PolicyVersion.objects.order_by("-number").first().taxonomy == taxonomy


def _field(html: str, name: str) -> str:
    """The opening tag of the form field ``name`` on the page."""
    found = re.findall(rf'<(?:input|textarea)\b[^>]*\bname="{re.escape(name)}"[^>]*>', html)
    assert len(found) == 1, (name, found)
    return found[0]


def _with_new_tag(taxonomy, category: int, key: str, **extra):  # type: ignore[no-untyped-def]
    """The structured POST with one tag added at the end of ``category``, as "+ Add tag" and typing make it."""
    data = _structured_post(taxonomy, **extra)
    j = len(taxonomy[category]["tags"])
    data[f"c{category}-tags"] = str(j + 1)
    return data | {f"c{category}t{j}-key": key, f"c{category}t{j}-name": "New", f"c{category}t{j}-keywords": "new"}


def test_a_key_used_twice_is_said_beside_the_field_typed_which_opens_focused(policy_version, client_as):
    """The editor listed "key '违法犯罪' is already used by …" above the form and focused nothing: the field to fix was
    to be found among some twenty rows. It is now marked (aria-invalid), described by the message beside it, and
    the page opens focused on it, as the app's other forms do."""
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])

    # A tag added at the end of the third category with the first tag's key.
    html = client.post(url, _with_new_tag(policy_version.taxonomy, 2, "违法犯罪")).content.decode()
    field = _field(html, "c2t4-key")
    assert 'aria-invalid="true"' in field and 'aria-describedby="c2t4-key-error"' in field and "autofocus" in field
    message = re.search(r'<p class="error field-error" id="c2t4-key-error">([^<]*)</p>', html)
    assert message is not None
    assert (
        message.group(1) == "Key &#x27;违法犯罪&#x27; is already used by Category 1 (法律与社会安全), tag 1 (违法犯罪)."
    )
    assert "aria-invalid" not in _field(html, "c0t0-key")  # the tag that had the key all along is not the one wrong
    assert html.count("autofocus") == 1 and html.count('aria-invalid="true"') == 1
    assert "each problem with a field is said beside it too" in html

    # Added to the first category with a key the third already has: the validator reports the third's (the later)
    # use, but the field typed is the new one.
    html = client.post(url, _with_new_tag(policy_version.taxonomy, 0, "引导私下交易")).content.decode()
    field = _field(html, "c0t5-key")
    assert 'aria-invalid="true"' in field and 'aria-describedby="c0t5-key-error"' in field and "autofocus" in field
    assert (
        '<p class="error field-error" id="c0t5-key-error">Key &#x27;引导私下交易&#x27; is also used by Category 3 '
        "(商业行为与商品宣传), tag 2 (引导私下交易).</p>"
    ) in html
    assert "aria-invalid" not in _field(html, "c2t1-key") and html.count("autofocus") == 1

    # A category key used twice; and with two problems, the first in the form's order is focused.
    data = _structured_post(policy_version.taxonomy)
    data["c3-key"] = data["c0-key"]
    data["c1-name"] = ""
    html = client.post(url, data).content.decode()
    assert 'aria-describedby="c3-key-error"' in _field(html, "c3-key") and 'id="c3-key-error"' in html
    assert 'aria-invalid="true" aria-describedby="c1-name-error" autofocus' in _field(html, "c1-name")
    assert html.count("autofocus") == 1
    assert PolicyVersion.objects.count() == 1

    # The JSON editor's one field: marked and focused, described by the list of problems.
    taxonomy = [{"key": "A", "name": "A", "tags": [{"key": "t", "name": "T", "keywords": ["k"]}] * 2}]
    html = client.post(url, {"mode": "json", "taxonomy_json": json.dumps(taxonomy)}).content.decode()
    assert 'aria-invalid="true" aria-describedby="editor-errors" autofocus' in _field(html, "taxonomy_json")
    assert 'id="editor-errors"' in html and "is already used by" in html


def test_user_text_in_a_taxonomy_is_escaped(policy_version, make_user, client_as):
    taxonomy = [
        {"key": "A", "name": "<script>alert(1)</script>", "tags": [{"key": "t", "name": "T", "keywords": ["<b>"]}]}
    ]
    draft = policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=make_user("admin"))
    html = client_as("labeler").get(reverse("moderation:policy_version", args=[draft.pk])).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_diff_page_and_htmx_partial_show_the_changes_between_any_two_versions(policy_version, make_user, client_as):
    taxonomy = json.loads(json.dumps(policy_version.taxonomy))
    taxonomy[2]["tags"][1]["keywords"].append("signal")
    taxonomy[3]["tags"][0]["name"] = "AI content without a label"
    draft = policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=make_user("admin"))
    client = client_as("moderator")
    url = reverse("moderation:policy_diff", args=[policy_version.policy.pk])

    full = client.get(url, {"a": policy_version.pk, "b": draft.pk})
    html = full.content.decode()
    assert full.status_code == 200 and "<html" in html
    assert "Keywords added" in html and "<ins>signal</ins>" in html
    assert "Tag renamed" in html and "<del>Missing AI-generated label</del>" in html

    partial = client.get(url, {"a": policy_version.pk, "b": draft.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "<ins>signal</ins>" in partial
    reverse_diff = client.get(url, {"a": draft.pk, "b": policy_version.pk}).content.decode()
    assert "Keywords removed" in reverse_diff and "<del>signal</del>" in reverse_diff

    assert client.get(url).status_code == 200  # defaults to the two newest versions
    assert client.get(url, {"a": policy_version.pk, "b": 999999}).status_code == 404


def test_publishing_from_the_version_page_makes_the_draft_active(policy_version, make_user, client_as):
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=make_user("admin")
    )
    client = client_as("policy_editor")
    page = client.get(reverse("moderation:policy_version", args=[draft.pk])).content.decode()
    assert "Publish and make active" in page and "Preview impact" in page

    confirmed = {"confirm": "publish", "replaces": str(policy_version.number), "notes": "Same taxonomy, re-published"}
    resp = client.post(reverse("moderation:policy_version_publish", args=[draft.pk]), confirmed, follow=True)
    assert resp.status_code == 200 and "is published and active" in resp.content.decode()
    assert list(PolicyVersion.objects.filter(is_active=True)) == [draft]

    # Rolling back from the old version's page.
    resp = client.post(reverse("moderation:policy_version_activate", args=[policy_version.pk]), {"confirm": "activate"})
    assert resp.status_code == 302
    assert list(PolicyVersion.objects.filter(is_active=True)) == [policy_version]


@pytest.mark.parametrize("role", ["moderator", "labeler", None])
def test_readers_cannot_edit_or_publish(policy_version, make_user, client_as, role):
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=make_user("admin")
    )
    client = client_as(role)
    assert client.get(reverse("moderation:policy_version", args=[draft.pk])).status_code == 200
    page = client.get(reverse("moderation:policy_version", args=[draft.pk])).content.decode()
    assert "Publish and make active" not in page
    edit = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    assert client.get(edit).status_code == 403
    assert client.post(edit, _structured_post(policy_version.taxonomy)).status_code == 403
    assert client.post(reverse("moderation:policy_version_publish", args=[draft.pk])).status_code == 403
    assert client.post(reverse("moderation:policy_version_activate", args=[policy_version.pk])).status_code == 403
    assert PolicyVersion.objects.count() == 2
    assert list(PolicyVersion.objects.filter(is_active=True)) == [policy_version]


def test_anonymous_users_are_sent_to_login(policy_version):
    client = Client()
    for url in (
        reverse("moderation:policy_edit", args=[policy_version.policy.pk]),
        reverse("moderation:policy_diff", args=[policy_version.policy.pk]),
        reverse("moderation:policy_version", args=[policy_version.pk]),
        reverse("moderation:policy_version_impact", args=[policy_version.pk]),
    ):
        resp = client.get(url)
        assert resp.status_code == 302 and resp["Location"].startswith("/login/"), url
    resp = client.post(reverse("moderation:policy_version_publish", args=[policy_version.pk]))
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")


def test_blm_policy_editor_requires_severities(client_as, db):
    from moderation.policies.services import policy_seed_blm_guard

    version = policy_seed_blm_guard()
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[version.policy.pk])
    page = client.get(url).content.decode()
    assert "Risk scene" in page and 'value="high" checked' in page
    data = _structured_post(version.taxonomy)
    data["c0t0-severities"] = []
    resp = client.post(url, data)
    assert resp.status_code == 400 and "need at least one severity" in resp.content.decode()
    data["c0t0-severities"] = ["high"]
    assert client.post(url, data).status_code == 302
    draft = version.policy.versions.get(status="draft")
    assert draft.output_format == "blm" and draft.taxonomy[0]["tags"][0]["severities"] == ["high"]


@pytest.mark.parametrize(
    ("taxonomy_json", "message"),
    [
        ('[{"key": "a\\u0000", "name": "b", "tags": [{"key": "x", "name": "y", "keywords": ["k"]}]}]', "NUL"),
        ('[{"key": "a", "name": "b", "tags": [{"key": "x", "name": "y", "keywords": ["k\\u0000"]}]}]', "NUL"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[" + "9" * 5000 + "]", "number too long"),
        ('[{"key": "a", "name": "b\\ud800", "tags": [{"key": "x", "name": "y", "keywords": ["k"]}]}]', "surrogates"),
    ],
)
def test_hostile_json_in_the_editor_is_refused_with_a_message(policy_version, client_as, taxonomy_json, message):
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    before = PolicyVersion.objects.count()
    resp = client.post(url, {"mode": "json", "taxonomy_json": taxonomy_json})
    assert resp.status_code == 400 and message in resp.content.decode()
    assert PolicyVersion.objects.count() == before


def test_a_nul_byte_in_any_form_field_is_a_clear_400_not_a_database_error(policy_version, client_as):
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    before = PolicyVersion.objects.count()
    for data in (
        {"mode": "json", "taxonomy_json": json.dumps(policy_version.taxonomy), "notes": "x\x00y"},
        _structured_post(policy_version.taxonomy) | {"c0-key": "a\x00"},
    ):
        resp = client.post(url, data)
        assert resp.status_code == 400 and "NUL characters" in resp.content.decode()
    assert PolicyVersion.objects.count() == before
    assert client.get(reverse("moderation:policy_list") + "?q=%00").status_code == 400


def test_the_compare_page_says_which_version_it_could_not_compare_instead_of_ignoring_it(
    policy_version, make_user, client_as
):  # type: ignore[no-untyped-def]
    """?a=abc was silently dropped (the page showed the two newest versions as if asked for them), and an id
    of no version of this policy was the bare "not found" page without the version picker."""
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=make_user("admin")
    )
    client = client_as("moderator")
    url = reverse("moderation:policy_diff", args=[policy_version.policy.pk])

    typed = client.get(url, {"a": "abc", "b": draft.pk})
    html = typed.content.decode()
    assert typed.status_code == 400
    assert "From (a=abc): not a version id (a number)." in html
    assert f"Showing v{policy_version.number} → v{draft.number} instead; pick two versions above." in html
    assert 'name="a"' in html  # the picker is on the page

    other = PolicyVersionFactory(policy__slug="other", number=1)  # a version of another policy
    missing = client.get(url, {"a": policy_version.pk, "b": other.pk}, HTTP_HX_REQUEST="true")
    text = missing.content.decode()
    # htmx swaps only a 200: the picker's request is answered with the message in place of the diff.
    assert missing.status_code == 200 and "<html" not in text
    assert f"To (b={other.pk}): no version {other.pk} of this policy." in text
    assert client.get(url, {"a": policy_version.pk, "b": other.pk}).status_code == 404
    assert "instead; pick two" not in client.get(url, {"a": policy_version.pk, "b": draft.pk}).content.decode()


def test_the_diff_of_a_policy_with_one_version_says_there_is_nothing_to_compare_yet(policy_version, client_as):
    """It was the bare "not found" page: the diff link looked broken, and the page had no way back."""
    url = reverse("moderation:policy_diff", args=[policy_version.policy.pk])
    back = reverse("moderation:policy_detail", args=[policy_version.policy.pk])
    edit = reverse("moderation:policy_edit", args=[policy_version.policy.pk])

    for query in ({}, {"a": "abc", "b": policy_version.pk}):  # a bookmarked or typed comparison as well
        page = client_as("moderator").get(url, query)
        html = page.content.decode()
        assert page.status_code == 200
        assert "Only one version: nothing to compare yet." in html
        assert f"v{policy_version.number} (active) is this policy's only version" in html
        assert f'<a href="{back}">Back to {policy_version.policy.name}</a>' in html
        assert edit not in html  # a moderator may not edit: no link that would refuse them
        assert 'name="a"' not in html  # no picker offering the one version against itself

    editor = client_as("policy_editor").get(url).content.decode()
    assert f'href="{edit}"' in editor and "a draft is a second version" in editor

    partial = client_as("moderator").get(url, HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in text and "nothing to compare yet" in text


def test_a_draft_without_notes_publishes_only_with_a_change_note_written_on_the_step(
    policy_version, make_user, client_as
):
    """Walked (hwalk22 p09/p10): v2 was published with empty notes; the versions table showed nothing beside it."""
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=make_user("admin")
    )
    client = client_as("policy_editor")
    page_url = reverse("moderation:policy_version", args=[draft.pk])
    step = client.get(page_url, {"confirm": "publish"}).content.decode()
    form = step.split('id="publish-confirm"')[1].split("</form>")[0]
    assert 'name="notes"' in form and "Change note" in form and "required" in form

    publish_url = reverse("moderation:policy_version_publish", args=[draft.pk])
    confirmed = {"confirm": "publish", "replaces": str(policy_version.number), "notes": "  "}
    refused = client.post(publish_url, confirmed)
    assert refused.status_code == 400
    form = refused.content.decode().split('id="publish-confirm"')[1].split("</form>")[0]
    assert f"Not published: v{draft.number} has no change note" in form
    assert 'aria-describedby="publish-note-refused"' in form and "autofocus" in form
    assert list(PolicyVersion.objects.filter(is_active=True)) == [policy_version]

    done = client.post(publish_url, confirmed | {"notes": "Loan keywords for false benefits"}, follow=True)
    assert "is published and active" in done.content.decode()
    draft.refresh_from_db()
    assert draft.is_active and draft.notes == "Loan keywords for false benefits"
    detail = client.get(reverse("moderation:policy_detail", args=[policy_version.policy.pk])).content.decode()
    assert "Change note: Loan keywords for false benefits" in detail


def test_a_refused_save_page_keeps_the_current_json_and_the_kept_edit_is_not_called_unsent(policy_version, client_as):
    """Walked (hwalk22 p12/p13): after a refused save the editor said "Restored your unsent edit" (it was sent, and
    refused) and opened the JSON panel on an empty box, the kept state of an emptied JSON box put back over the
    current JSON. The box is marked so that an empty kept value is never put back (static/workbench.js)."""
    from django.conf import settings

    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    refused = client.post(url, {"mode": "json", "taxonomy_json": "", "base": policy_version.pk})
    assert refused.status_code == 400
    page = client.post(url, {**_structured_post(policy_version.taxonomy), "c0t0-key": ""}).content.decode()
    box = re.search(r'<textarea name="taxonomy_json"[^>]*>([^<]*)</textarea>', page)
    assert box is not None and "data-unsent-not-blank" in box.group(0)
    assert json.loads(unescape(box.group(1))) == policy_version.taxonomy  # the current JSON, drawn by the server
    script = (settings.BASE_DIR / "static" / "workbench.js").read_text()
    assert "[data-unsent-not-blank]" in script and "it was sent but not saved" in script
