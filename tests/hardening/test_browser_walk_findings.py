"""Findings of a walk through the workbench in Chromium at 1440x900 as each role (screenshots under
/work/shots at the time), each pinned by a client test that fails without its fix."""

from __future__ import annotations

import pytest
from django.urls import reverse

from moderation.tagging.models import TagSet
from moderation.tagging.services import tag_set_default, tags_import
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db


def _set_form(page: str, slug: str) -> str:
    start = page.index(f'data-tag-set="{slug}"')
    return page[start : page.index("</form>", start)]


def _edit(tag_set: TagSet, **changes: str) -> dict[str, str]:
    form = {"slug": tag_set.slug, "name": tag_set.name, "show_threshold": "0.05", "preselect_threshold": "0.9"}
    return form | {"max_suggestions": "12", "tags": "", "is_default": "on"} | changes


# Saving a tag set redirected to "#tag-sets", so the browser scrolled ~1,700 px down to the sets while
# the confirmation sat at the top of the page, out of sight: the editor could not tell it had saved.
# It also said "(every active tags)".
def test_a_saved_tag_set_says_so_in_its_own_form_once(client_as):
    tags_import(lines=["萌宠"])
    default = tag_set_default()
    editor = client_as("policy_editor")

    saved = editor.post(reverse("moderation:tag_set_save"), _edit(default, name="Recommendation (all)"))

    assert saved.status_code == 302 and saved["Location"].endswith(f"#tag-set-{default.slug}")
    page = editor.get(saved["Location"].split("#")[0]).content.decode()
    form = _set_form(page, default.slug)
    assert f'id="tag-set-{default.slug}"' in page
    assert "Saved tag set “Recommendation (all)” (every active tag)." in form and 'role="status"' in form
    reload = editor.get(reverse("moderation:tag_vocabulary")).content.decode()
    assert "Saved tag set" not in reload  # said once, not on every later visit


# "Suggestions shown: 2.7" was saved as 2 without a word.
def test_a_fractional_suggestion_count_is_refused_not_cut_short(client_as):
    default = tag_set_default()
    editor = client_as("policy_editor")

    response = editor.post(reverse("moderation:tag_set_save"), _edit(default, max_suggestions="2.7"))

    assert response.status_code == 400
    form = _set_form(response.content.decode(), default.slug)
    assert "Suggestions shown: “2.7” is not a whole number." in form and 'value="2.7"' in form
    default.refresh_from_db()
    assert default.max_suggestions == 12


# A form's address opened directly (Enter in the address bar after a refused form was shown at its
# POST address, a bookmark) was an empty 405, which Chromium shows as "This page isn't working".
def test_a_form_address_opened_directly_is_a_page_that_says_so(client_as):
    response = client_as("policy_editor").get(reverse("moderation:tag_set_save"))

    assert response.status_code == 405 and response["Allow"] == "POST"
    page = response.content.decode()
    assert "Nothing to open here" in page and "nothing was saved" in page and 'href="/"' in page
    api = client_as("moderator").get(reverse("api-token"))
    assert api.status_code == 405 and api.json()["detail"]  # the API answers for itself, in JSON


# The job screen listed its parameters in the database's key order with Python reprs:
# "lora_target_modules=['q_proj', 'v_proj']", and "guide_base_model=" for an empty one.
def test_a_jobs_parameters_read_as_names_and_values_not_python(client_as):
    from training.models import PreferenceDataset, TrainingJob

    params = {"seed": 42, "lora_target_modules": ["q_proj", "v_proj"], "guide_base_model": "", "beta": 0.1}
    job = TrainingJob.objects.create(dataset=PreferenceDataset.objects.create(name="pairs"), params=params)

    page = client_as("admin").get(reverse("training:job_detail", args=[job.pk])).content.decode()

    shown = page[page.index("<dt>Parameters</dt>") : page.index("<dt>Created</dt>")]
    assert "<kbd>lora_target_modules=q_proj, v_proj</kbd>" in shown and "<kbd>guide_base_model=—</kbd>" in shown
    assert "[" not in shown and "&#x27;" not in shown
    assert shown.index("beta=") < shown.index("guide_base_model=") < shown.index("seed=")  # by name


# One pair was announced as "with 1 preference pairs".
def test_a_dataset_of_one_pair_is_one_pair(client_as, policy_version, settings, tmp_path):
    from tests.factories import ReviewFactory, ReviewTaskFactory

    settings.TRAINING_OUTPUT_DIR = tmp_path / "training"
    decision = DecisionFactory(policy_version=policy_version, label="正向", video__title="Cheap phones")
    ReviewFactory(task=ReviewTaskFactory(decision=decision), decision=decision, note="Sells off the platform.")

    page = client_as("admin").post(reverse("training:dataset_build"), {"kind": "dpo"}, follow=True)

    assert "with 1 preference pair (0 held out)." in page.content.decode()
