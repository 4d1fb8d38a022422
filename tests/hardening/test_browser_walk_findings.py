"""Findings of a walk through the workbench in Chromium at 1440x900 as each role (screenshots under
/work/shots at the time), each pinned by a client test that fails without its fix."""

from __future__ import annotations

import re

import pytest
from django.test import Client
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
# Now it leads to the form's screen (workbench/form_routes.py); a POST-only address that is not ours (the admin's
# sign-out) is still a page that says so.
def test_a_form_address_opened_directly_is_a_page_that_says_so(client_as, make_user):
    response = client_as("policy_editor").get(reverse("moderation:tag_set_save"))
    assert response.status_code == 303 and response["Location"] == reverse("moderation:tag_vocabulary")

    staff = Client()
    staff.force_login(make_user("admin", is_staff=True))
    response = staff.get(reverse("admin:logout"))
    assert response.status_code == 405 and "POST" in response["Allow"]
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

    assert "Built “DPO pairs " in page.content.decode() and ": 1 preference pair, all to train on, none held out." in (
        page.content.decode()
    )


# A KuaiMod tag lists no severities, which means any severity (PolicySpec.severities_for); the policy
# page showed "—" in the Severities column (read as "none") and the editor three unticked boxes.
def test_a_tag_without_listed_severities_says_any_on_the_policy_page_and_in_the_editor(policy_version, client_as):
    client = client_as("policy_editor")
    assert policy_version.spec().severities_for("色情低俗") == ("low", "medium", "high")

    page = client.get(reverse("moderation:policy_version", args=[policy_version.pk])).content.decode()
    editor = client.get(reverse("moderation:policy_edit", args=[policy_version.policy_id])).content.decode()

    row = page[page.index("<td>色情低俗</td>") :]
    row = row[: row.index("</tr>")]
    assert row.rstrip().endswith(">any</span></td>")  # the Severities cell, last in the row
    assert 'Severities <small class="hint">(none ticked: any)</small>' in editor


# A 400-character Chinese title came back whole in the upload message and made its row in the video
# list 26 lines high; the message now cuts it at 80 characters (the list clamps it to 3 lines in CSS,
# with the whole title as the cell's tooltip).
def test_an_upload_with_a_very_long_title_is_confirmed_in_one_short_line(client_as):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from moderation.media.models import Video

    title = "标题" + "很长的标题" * 80
    upload = SimpleUploadedFile("long.mp4", b"\x00\x00\x00\x18ftypmp42" + b"z" * 2048)
    client = client_as("moderator")

    page = client.post(reverse("moderation:video_upload"), {"file": upload, "title": title}, follow=True)

    text = page.content.decode()
    message = text[text.index('class="messages"') :]
    message = message[: message.index("</ul>")]
    assert f"“{title[:79]}…” was uploaded" in message and title not in message
    assert Video.objects.get().title == title  # stored whole
    assert f'class="cell-title" title="{title}"' in text


# An evaluation's set was shown as its comparison key: "Queued · gold:policy_version=1 · queued 18:25".
def test_an_evaluation_names_its_set_in_words(client_as, policy_version):
    from tests.factories import ModelVersionFactory
    from training.models import EvaluationRun

    model = ModelVersionFactory(name="eval-words")
    gold = EvaluationRun.objects.create(
        model_version=model, policy_version=policy_version, eval_set_key=f"gold:policy_version={policy_version.pk}"
    )
    key = f"kuaimod_file:test.jsonl:0123456789abcdef:policy_version={policy_version.pk}"
    EvaluationRun.objects.create(
        model_version=model, policy_version=policy_version, eval_set="kuaimod_file", eval_set_key=key
    )
    admin = client_as("admin")

    detail = admin.get(reverse("training:evaluation_detail", args=[gold.pk])).content.decode()
    listing = admin.get(reverse("training:model_list")).content.decode()

    assert f">Gold set (human-labelled videos) · {policy_version}</span>" in detail
    assert f">KuaiMod file test.jsonl (sha256 01234567…) · {policy_version}</td>" in listing
    assert ">gold:policy_version=" not in detail + listing  # the key is only a tooltip now


# The evaluation screen listed raw metric keys ("binary_accuracy", "n_violative"), and a category with
# no gold item showed an empty cell: "—" went through floatformat, which makes "" of it (also in the
# comparison's deltas).
def test_an_evaluation_names_its_metrics_and_says_dash_for_a_category_without_items(client_as, policy_version):
    from tests.factories import ModelVersionFactory
    from training.models import EvaluationRun

    metrics = {"n": 3, "binary_accuracy": 0.5, "binary_accuracy_ci95": [0.1, 0.9]}
    per_category = {"major_recall": {"商业行为与商品宣传": 0.0, "知识产权与标识合规": None}}
    a, b = (
        EvaluationRun.objects.create(
            model_version=ModelVersionFactory(name=f"eval-metrics-{n}"), policy_version=policy_version,
            eval_set_key="gold:policy_version=1", status="succeeded", metrics=metrics, per_category=per_category,
        )
        for n in (1, 2)
    )  # fmt: skip
    admin = client_as("admin")

    detail = admin.get(reverse("training:evaluation_detail", args=[a.pk])).content.decode()
    compare = admin.get(reverse("training:evaluation_compare") + f"?a={a.pk}&b={b.pk}").content.decode()

    assert '<th title="binary_accuracy">Binary accuracy (violation or not)</th><td>0.500</td>' in detail
    assert '<th title="n">Items evaluated</th>' in detail and "<th>binary_accuracy</th>" not in detail
    name = r"(?: <small class=\"hint\">[^<]*</small>)?</th>"  # the policy's English name beside the key (walk 18)
    assert re.search("<th>商业行为与商品宣传" + name + "<td>0.000</td>", detail)
    assert re.search("<th>知识产权与标识合规" + name + "<td>— \\(no item of it\\)</td>", detail)
    assert "<td></td>" not in compare  # a metric neither run has is "—", not an empty cell
    assert '<th title="violative_recall">Violation recall</th><td>—</td><td>—</td>' in compare


# The pair screen's "All keyframes" were two unlabelled strips: which one was the later upload?
def test_a_pairs_keyframe_strips_say_which_upload_they_are(make_user):
    from django.test import Client

    from moderation.reproduction.models import ReproCandidate
    from moderation.reproduction.services import pair_claim_next
    from tests.factories import DecidedVideoFactory  # decided, so routed: open to moderators

    ReproCandidate.objects.create(
        video=DecidedVideoFactory(file=""), original=DecidedVideoFactory(file=""),
        score=0.9, retrieval_score=0.9, offset=0.0,
        evidence={"alignment": {"offset": 0.0, "scale": 1.0, "mirrored": False, "coverage_copy": 0.8,
                                "coverage_original": 0.5, "matches": []}},
    )  # fmt: skip
    moderator = make_user("moderator")
    pair = pair_claim_next(user=moderator)
    assert pair is not None
    client = Client()
    client.force_login(moderator)

    page = client.get(reverse("moderation:repro_pair", args=[pair.pk])).content.decode()

    strips = page[page.index(">All keyframes") : page.index(">Transcripts")]
    later, earlier = strips.index('<p class="strip-label">Later upload</p>'), strips.index("Earlier upload</p>")
    assert later < strips.index('<div class="strip">') < earlier < strips.rindex('<div class="strip">')


# A space typed alone in "Add a tag" answered "No tag matches “ ”", and a pasted paragraph came back whole.
def test_tag_search_ignores_a_lone_space_and_echoes_a_long_query_short(client_as):
    client = client_as("moderator")
    url = reverse("moderation:tag_search")

    assert "No tag matches" not in client.get(url, {"q": "  "}, HTTP_HX_REQUEST="true").content.decode()
    long = client.get(url, {"q": "长" * 300}, HTTP_HX_REQUEST="true").content.decode()
    assert "No tag matches “" + "长" * 39 + "…”:" in long


# Opening another reviewer's item said only "This item is claimed by another reviewer." and sent the user
# to their home page "for the work your role can do": not until when, nor what to do instead.
def test_another_reviewers_item_says_until_when_and_what_to_do(make_user, policy_version):
    from django.test import Client
    from django.utils import timezone

    from moderation.review.services import review_claim_next
    from tests.factories import ReviewTaskFactory, TagTaskFactory

    review = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file="")
    tags = TagTaskFactory(decision__policy_version=policy_version)
    holder = make_user("moderator")
    assert review_claim_next(user=holder) == review and review_claim_next(user=holder, queue=tags.queue) == tags
    other = Client()
    other.force_login(make_user("moderator"))

    for task, view in ((review, "moderation:review_task"), (tags, "moderation:tag_task")):
        task.refresh_from_db()
        until = f"{timezone.localtime(task.lease_expires_at):%H:%M}"
        page = other.get(reverse(view, args=[task.pk]))
        assert page.status_code == 403
        text = page.content.decode()
        assert f"claimed by another reviewer until {until}, when their claim expires" in text
        assert "Claim the next item from the queue instead." in text

    # Once the lease ran out the page still said "until 02:34, when their claim expires" at 02:50.
    from datetime import timedelta

    for task, view in ((review, "moderation:review_task"), (tags, "moderation:tag_task")):
        type(task).objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=16))
        task.refresh_from_db()
        text = other.get(reverse(view, args=[task.pk])).content.decode()
        lapsed = f"{timezone.localtime(task.lease_expires_at):%H:%M}"
        assert f"Another reviewer’s claim on this item lapsed at {lapsed}" in text, view
        assert "when their claim expires" not in text


# Empty states: the tag ranker's history was a header row with nothing under it, and the operations
# dashboard said "– of cascade decisions went to the VLM" when there were none.
def test_the_ranker_history_and_the_cascade_share_explain_their_empty_state(client_as):
    admin = client_as("admin")

    ranker = admin.get(reverse("moderation:tag_ranker")).content.decode()
    ops = admin.get(reverse("moderation:ops_dashboard")).content.decode()

    assert "No training run yet: each retrain (this page's button" in ranker
    assert "No ranker trained yet: a run with enough reviewer events adds a version here." in ranker
    assert "No decision went through the cascade in 14 days" in ops and "–</strong> of cascade" not in ops


# Views give a 404 its reason ("No such video."), but the page dropped it for "There is nothing at this
# address…": the links looked broken. (A policy's diff with one version is no longer a 404 at all: it is a page
# that says there is nothing to compare yet, tests/moderation/policies/test_policy_editor_views.py.)
def test_a_not_found_page_says_the_reason_its_view_gave_and_only_that(client_as, policy_version):
    admin = client_as("admin")

    diff = admin.get(reverse("moderation:policy_diff", args=[policy_version.policy_id]))
    missing = admin.get(reverse("moderation:video_detail", args=[999_999]))
    nowhere = admin.get("/no/such/page/")

    assert missing.status_code == nowhere.status_code == 404
    assert diff.status_code == 200 and "nothing to compare yet" in diff.content.decode()
    # Django's own wording ("No Video matches the given query.") is not shown; a missing video and a hidden one
    # (restricted queue) say the same sentence, so the page does not reveal which it is.
    assert "No such video." in missing.content.decode() and "query" not in missing.content.decode()
    text = nowhere.content.decode()
    assert "There is nothing at this address" in text and "query" not in text and "Resolver404" not in text


# A job that failed while running showed its error as the runner stored it ("TrainingError: Base model
# folder ... has no config.json ...", a whole multi-line message in one red paragraph) and said nothing of
# what to do next: a failed job is not resumed, and the admin had to re-type its settings in a new job.
def test_a_job_that_failed_while_running_says_what_failed_and_how_to_start_again(client_as, settings, tmp_path):
    from training.models import PreferenceDataset, TrainingJob
    from training.runners.common import run_job_launched
    from training.services import training_job_claim, training_job_fail

    settings.TRAINING_OUTPUT_DIR, settings.TRAINING_LAUNCHER = tmp_path / "training", "inprocess"
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    dataset = PreferenceDataset.objects.create(name="pairs", pair_count=3)
    params = {"max_steps": 4, "lora_r": 8, "lora_target_modules": ["q_proj", "v_proj"]}
    job = TrainingJob.objects.create(dataset=dataset, base_model=str(broken), params=params, total_steps=4)
    training_job_claim(job_id=job.pk)
    run_job_launched(job.pk)  # the worker's own code path: the base model check fails inside the run
    admin = client_as("admin")

    page = admin.get(reverse("training:job_detail", args=[job.pk])).content.decode()

    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith(f"Base model folder {broken} ")  # no class name
    assert f"This job failed before its first step:</strong> Base model folder {broken} has no config.json" in page
    assert "TrainingError" not in page.split('id="job-progress"')[1].split(">Log</h2>")[0]
    assert "A failed job is not resumed" in page and f"?from_job={job.pk}#start" in page
    again = admin.get(reverse("training:job_list") + f"?from_job={job.pk}").content.decode()
    start = again[again.index('id="start"') :]
    assert (
        f'value="{broken}"' in start
        and 'value="q_proj,v_proj"' in start
        and f'<option value="{dataset.pk}" selected' in start
    )
    for bad in ("²", "9" * 30, "-1", "abc"):  # an address edited by hand: the empty form, not a 500
        response = admin.get(reverse("training:job_list"), {"from_job": bad})
        assert response.status_code == 200 and f'value="{broken}"' not in response.content.decode()

    # A crash deep in the trainer: its first line said, the rest folded, the class apart.
    other = TrainingJob.objects.create(dataset=dataset, params=params, total_steps=4, status="running", step=2)
    training_job_fail(job_id=other.pk, error="RuntimeError: CUDA out of memory.\n  Tried to allocate 2.00 GiB")
    page = admin.get(reverse("training:job_detail", args=[other.pk])).content.decode()
    assert "This job failed at step 2:</strong> CUDA out of memory. <small" in page and "(RuntimeError)" in page
    assert "<summary>Full error</summary>" in page and "Tried to allocate 2.00 GiB" in page


# The video page's heading showed a 400-character title in full, about 9 lines at 1440 px before
# anything else; it is clamped to two lines like the list rows (14fcba6), whole in its tooltip and
# in the details list, and the browser tab's title is cut at 80 characters.
def test_the_video_pages_heading_clamps_a_very_long_title_that_stays_readable(client_as):
    from pathlib import Path

    from django.conf import settings as django_settings

    from tests.factories import DecidedVideoFactory  # decided, so routed: open to moderators

    title = "标题" + "很长的标题" * 80
    video = DecidedVideoFactory(title=title)

    page = client_as("moderator").get(reverse("moderation:video_detail", args=[video.pk])).content.decode()

    heading = page[page.index("<h1>") : page.index("</h1>")]
    assert f'<span class="cell-title heading-title" title="{title}">' in heading
    assert f"<dt>Title</dt><dd>{title}</dd>" in page
    assert f"<title>{title[:79]}… · Review workbench</title>" in page
    uploaded = page[page.index("<dt>Uploaded</dt>") : page.index("<dt>SHA-256</dt>")]
    assert video.original_filename == "" and not re.search(r"·\s*·", uploaded)  # no empty file name between dots
    css = (Path(django_settings.BASE_DIR) / "static" / "workbench.css").read_text()
    assert ".heading-title { max-width:none; -webkit-line-clamp:2; line-clamp:2;" in css


# A chip's number ("萌宠 0.83 text") said it was the ranker's score only in its hover text: a reviewer
# without a mouse over it (or a screen reader) could not tell a score from a count or a confidence.
def test_a_tag_chips_number_is_said_to_be_the_rankers_score_without_hovering(client_as):
    from moderation.tagging.models import Tag, TagSuggestion
    from tests.factories import DecidedVideoFactory  # decided, so routed: open to moderators

    tags_import(lines=["萌宠"])
    video, bare = DecidedVideoFactory(), DecidedVideoFactory()
    TagSuggestion.objects.create(video=video, tag=Tag.objects.get(name="萌宠"), score=0.83, sources=["text"])
    client = client_as("moderator")

    panel = client.get(reverse("moderation:tag_panel", args=[video.pk])).content.decode()
    empty = client.get(reverse("moderation:tag_panel", args=[bare.pk])).content.decode()

    legend = (
        "The number on a chip is the ranker's score (0–1, how likely the tag fits); from 0.90 a chip starts ticked."
    )
    assert legend in panel and panel.index(legend) < panel.index('id="tag-chips"')
    assert '<span class="visually-hidden">ranker score </span>0.83</span>' in panel
    assert "The number on a chip" not in empty  # no chips, no legend
    assert "No tag candidates yet" in empty and "No tag candidates yet" not in panel  # chips are candidates


# An integration without its own rate limit read "rate default": which default, how many requests?
def test_an_integration_says_the_rate_limit_in_effect_in_words(client_as, settings):
    from moderation.integrations.services import integration_create

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"integration": "600/min"}}
    integration_create(name="shop-app")
    integration_create(name="partner", rate_limit="5000/hour")

    page = client_as("admin").get(reverse("moderation:integration_list")).content.decode()

    assert "rate default" not in page
    assert "rate limit 600 requests a minute (the server default) ·" in page
    assert "rate limit 5000 requests an hour ·" in page
    assert 'placeholder="600/min"' in page and "empty: the server default, 600 requests a minute" in page


# "Add a tag" showed "search Recommendation (a" (its placeholder named the tag set, cut off by the box;
# the set is named in the panel's heading), and the tag-set form's Save button stretched across the form.
def test_the_tag_search_placeholder_fits_and_form_buttons_are_as_wide_as_their_words(client_as):
    from pathlib import Path

    from django.conf import settings as django_settings

    from tests.factories import DecidedVideoFactory  # decided, so routed: open to moderators

    video = DecidedVideoFactory()
    panel = client_as("moderator").get(reverse("moderation:tag_panel", args=[video.pk])).content.decode()

    name = tag_set_default().name
    assert f'placeholder="search tags…" title="Search the tags of {name}"' in panel
    css = (Path(django_settings.BASE_DIR) / "static" / "workbench.css").read_text()
    assert (
        ".stack > button { align-self:flex-start; }" in css and ".tag-search input { width:min(100%, 16rem); }" in css
    )
