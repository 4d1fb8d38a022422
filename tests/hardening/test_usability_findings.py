"""Findings of the usability pass (every screen driven in Chromium at 1440x900 as each role), each
pinned by a view test that fails without its fix."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from annotation.models import Adjudication, Tag2CotTask
from moderation.integrations.models import Integration, WebhookEndpoint
from moderation.integrations.services import integration_create
from moderation.reproduction.models import ReproCandidate
from tests.factories import DecisionFactory, PolicyVersionFactory, TagTaskFactory, VideoFactory


@pytest.mark.django_db
def test_the_api_docs_load_swagger_ui_from_our_static_files_not_a_cdn(client_as):
    # Workbench hosts often reach no CDN: /api/docs/ was a blank page ("SwaggerUIBundle is not defined").
    html = client_as("labeler").get("/api/docs/").content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    scripts = re.findall(r'src="([^"]*swagger-ui[^"]*\.js)"', html)
    assert scripts, html[:2000]
    for src in scripts:
        assert src.startswith(settings.STATIC_URL) or src.startswith("/" + settings.STATIC_URL), src
        assert finders.find(src.split(settings.STATIC_URL, 1)[1]) is not None, src


@pytest.mark.django_db
def test_a_signed_out_visitor_refused_by_an_api_page_is_told_to_sign_in_and_comes_back(client):
    """/api/docs/ signed out said "Not allowed: Your role may not open this page" (a 403, as the API answers),
    and its "sign in" link forgot the page."""
    html = client.get("/api/docs/").content.decode()
    assert "Sign in first" in html and 'href="/login/?next=/api/docs/"' in html
    assert "Your role may not open" not in html


@pytest.mark.django_db
def test_a_refused_integration_keeps_what_was_typed_and_says_why(client_as):
    client = client_as("admin")
    response = client.post("/integrations/add/", {"name": "shop-app", "rate_limit": "lots"})
    assert response.status_code == 400  # not a redirect to an emptied form
    html = response.content.decode()
    assert 'id="integration-error"' in html and "is not like 120/min" in html
    assert 'value="shop-app"' in html and 'value="lots"' in html
    assert not Integration.objects.exists()
    # A bare count, as the box's hint ("600 requests a minute") invites, was told "is not like 120/min".
    html = client.post("/integrations/add/", {"name": "shop-app", "rate_limit": "120"}).content.decode()
    assert "Rate limit &#x27;120&#x27; needs a period: 120/min or 120/hour." in html and 'value="120"' in html


@pytest.mark.django_db
def test_a_refused_webhook_endpoint_keeps_its_url_and_event_choices(client_as):
    integration, _token = integration_create(name="shop-app", rate_limit="")
    client = client_as("admin")
    response = client.post(
        f"/integrations/{integration.pk}/endpoints/add/",
        {"url": "ftp://platform.example/hook", "event_types": ["decision.created"]},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="endpoint-error-{integration.pk}"' in html and "is not an http(s) URL" in html
    assert 'value="ftp://platform.example/hook"' in html
    form = html.split(f'id="endpoint-error-{integration.pk}"', 1)[1].split("</form>", 1)[0]
    checked = re.findall(r'name="event_types" value="([^"]+)" checked', form)
    assert checked == ["decision.created"]  # the others stay unticked, as they were sent
    assert 'name="only_own_videos" checked' not in form
    assert not WebhookEndpoint.objects.exists()


def _pager_pages(html: str) -> list[str]:
    return re.findall(r'href="\?(?:status=\w+&amp;)?page=(\d+)"', html)


@pytest.mark.django_db
def test_the_adjudication_list_pages_past_50(client_as):
    version = PolicyVersionFactory()
    decisions = [DecisionFactory(policy_version=version) for _ in range(17)]
    kinds = [k for k, _ in Adjudication._meta.get_field("kind").choices]
    Adjudication.objects.bulk_create(
        Adjudication(video_id=d.video_id, decision=d, kind=k, reason="r")
        for d, k in itertools.product(decisions, kinds)
    )
    client = client_as("moderator")
    first = client.get("/annotation/adjudications/").content.decode()
    assert "page 1 of 2" in first and "2" in _pager_pages(first)
    second = client.get("/annotation/adjudications/?status=open&page=2").content.decode()
    assert len(re.findall(r'href="/annotation/adjudications/\d+/"', second)) == 51 - 50


@pytest.mark.django_db
def test_the_tag2cot_list_pages_past_50_and_says_how_to_fill_it(client_as):
    client = client_as("labeler")
    assert "Queue new Tag2CoT tasks” to" in client.get("/annotation/tag2cot/").content.decode()
    decision = DecisionFactory()
    Tag2CotTask.objects.bulk_create(
        Tag2CotTask(
            decision=decision,
            video_id=decision.video_id,
            policy_version=decision.policy_version,
            target_label=f"label-{i}",
            label_source="review",
        )
        for i in range(51)
    )
    first = client.get("/annotation/tag2cot/").content.decode()
    assert "page 1 of 2" in first and "2" in _pager_pages(first)
    second = client.get("/annotation/tag2cot/?status=open&page=2").content.decode()
    assert len(re.findall(r'href="/annotation/tag2cot/\d+/"', second)) == 1


@pytest.mark.django_db
def test_the_reproduction_pair_list_pages_past_50(client_as, policy_version):
    videos = [DecisionFactory(policy_version=policy_version).video for _ in range(8)]  # decided: open to all
    ReproCandidate.objects.bulk_create(
        ReproCandidate(video=a, original=b, score=0.9) for a, b in itertools.permutations(videos, 2)
    )  # 56 pairs
    client = client_as("moderator")
    first = client.get("/repro/").content.decode()
    assert "page 1 of 2" in first and "2" in _pager_pages(first)
    second = client.get("/repro/?page=2").content.decode()
    assert len(re.findall(r"<td>#\d+</td>", second)) == 6


@pytest.mark.django_db
def test_the_empty_tags_queue_says_the_vocabulary_is_empty(client_as):
    html = client_as("admin").get("/tags/").content.decode()
    assert 'id="tags-empty"' in html and "the tag vocabulary is empty" in html
    assert 'href="/tags/vocabulary/"' in html
    # The key hint sits beside the primary button, not inside it (white on white there).
    assert re.search(r'data-hotkey="n">Claim next</button> <kbd>n</kbd>', html)


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        ([5.0], ["0", "2.5", "5"]),  # the middle gridline was labelled "2" though it stands at 2.5
        ([0.1], ["0", "0.05", "0.1"]),  # was "0.0", "0.1", "0.1": two gridlines with one label
        ([240.0], ["0", "120", "240"]),
    ],
)
def test_ops_chart_gridlines_are_labelled_with_the_value_they_stand_for(values, labels):
    from moderation.ops.charts import bar_chart

    chart = bar_chart(["default"], values)
    assert [t["label"] for t in chart.y_ticks] == labels


@pytest.mark.django_db
def test_a_video_without_speech_says_so_without_a_numbered_empty_transcript(client_as):
    decision = DecisionFactory()
    adjudication = Adjudication.objects.create(
        video_id=decision.video_id, decision=decision, kind="reported_pass", reason="r"
    )
    html = client_as("moderator").get(f"/annotation/adjudications/{adjudication.pk}/").content.decode()
    transcript = html.split('id="transcript"', 1)[1].split("</details>", 1)[0]
    assert 'id="no-speech"' in transcript and "<ol" not in transcript  # was "1. No speech transcribed."


@pytest.mark.django_db
def test_the_tag_screen_shields_media_until_revealed_like_the_review_screen(client_as):
    task = TagTaskFactory(decision=DecisionFactory())  # its video has a file to shield
    client = client_as("moderator")
    html = client.get(f"/tags/task/{task.pk}/").content.decode()
    shield = re.search(r'<div data-shield class="([^"]*)">\s*<video', html)
    assert shield and shield.group(1) == "shielded", html[:3000]  # it played unblurred
    assert 'data-reveal-toggle data-hotkey="r"' in html
    client.post("/review/reveal/", {"reveal": "1", "next": f"/tags/task/{task.pk}/"})
    html = client.get(f"/tags/task/{task.pk}/").content.decode()
    assert re.search(r'<div data-shield class="">\s*<video', html)


class _ShieldScan(HTMLParser):
    """Which element ids sit inside the ``data-shield`` element (void elements do not nest)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.shielded_ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        inside = bool(self.stack and self.stack[-1]) or "data-shield" in names
        if inside and names.get("id"):
            self.shielded_ids.add(str(names["id"]))
        if tag not in self.VOID:
            self.stack.append(inside)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()


@pytest.mark.django_db
def test_the_pair_screen_shields_its_keyframe_strips_too(client_as, policy_version):
    later, earlier = (DecisionFactory(policy_version=policy_version).video for _ in range(2))  # decided: open
    pair = ReproCandidate.objects.create(video=later, original=earlier, score=0.9)
    html = client_as("moderator").get(f"/repro/{pair.pk}/").content.decode()
    scan = _ShieldScan()
    scan.feed(html)
    assert "pair-players" in scan.shielded_ids
    assert "matched-keyframes" in scan.shielded_ids  # the thumbnails were shown unblurred


@pytest.mark.django_db
def test_a_refused_page_names_the_role_it_needs_not_a_permission_code(client_as):
    response = client_as("labeler").get("/integrations/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "moderation.manage_integrations" not in html  # was "Your role may not do this (moderation.manage_…)"
    assert "it needs the admin role" in html and "(labeler)" in html
    assert 'href="/"' in html and "Go to your home page" in html
    html = client_as("policy_editor").get("/review/").content.decode()
    assert "it needs the moderator or admin role" in html


@pytest.mark.django_db
def test_a_refused_dataset_build_says_why_beside_its_form_and_keeps_the_choices(client_as):
    """Walked (hwalk15 row 16): the refusal was the POST's own 400 page, so a reload asked to re-send the form. It
    redirects to the training page (POST-redirect-GET, as the cascade dashboard does), which says why beside the
    form once, with the choices kept; a reload is a plain GET and shows the form reset."""
    client = client_as("admin")
    response = client.post("/training/datasets/build/", {"kind": "sft", "eval_share": "0.2"})
    assert response.status_code == 302 and response["Location"] == "/training/jobs/#dataset-error"
    html = client.get("/training/jobs/").content.decode()
    assert 'id="dataset-error"' in html and "No SFT data yet" in html
    assert (
        '<option value="sft" selected>' in html
        and 'name="eval_share" min="0" max="0.9" step="0.05" value="0.2"' in html
    )
    again = client.get("/training/jobs/").content.decode()  # shown once: a reload is the page as it is
    assert 'id="dataset-error"' not in again and '<option value="sft" selected>' not in again


@pytest.mark.django_db
def test_a_long_video_title_in_a_list_is_held_to_a_width_not_squeezing_the_other_columns(client_as):
    # A 200-character title took the whole table: the link beside it broke as "Cor" / "rect".
    title = "Unbroken" + "x" * 190
    DecisionFactory(video=VideoFactory(title=title))
    client = client_as("admin")
    for url in ("/annotation/corrections/", "/videos/"):
        html = client.get(url).content.decode()
        assert re.search(rf'class="cell-title"[^>]*>{title}<', html), url
    css = (settings.BASE_DIR / "static" / "workbench.css").read_text()
    assert re.search(r"\.cell-title\s*\{[^}]*max-width", css)


@pytest.mark.django_db
def test_the_browsable_api_leads_back_to_the_workbench_and_says_what_it_is(client_as):
    html = client_as("moderator").get("/api/", HTTP_ACCEPT="text/html").content.decode()
    assert 'id="api-home"' in html and 'href="/"' in html and 'href="/api/docs/"' in html
    assert "The default basic root view for DefaultRouter" not in html
    assert "Review workbench API" in html and "Authorization: Integration" in html
    assert '<link rel="icon" href="/static/favicon.ico"' in html  # the browser asked for a missing /favicon.ico (404)


@pytest.mark.django_db
def test_comparing_policy_versions_puts_the_comparison_in_the_address_bar(client_as):
    version = PolicyVersionFactory()
    PolicyVersionFactory(policy=version.policy, is_active=False, status="draft")
    html = client_as("policy_editor").get(f"/policies/{version.policy_id}/").content.decode()
    form = html.split(f'action="/policies/{version.policy_id}/diff/"', 1)[1].split(">", 1)[0]
    assert 'hx-push-url="true"' in form  # the diff was swapped in while the address stayed the policy page
    assert "Shared by the policy page" not in html


@pytest.mark.django_db
def test_a_new_integration_token_is_shown_once_after_a_redirect_so_a_reload_creates_nothing(client_as):
    client = client_as("admin")
    response = client.post("/integrations/add/", {"name": "shop-app", "rate_limit": "120/min"})
    integration = Integration.objects.get()
    assert response.status_code == 302 and response.url == f"/integrations/{integration.pk}/token/"
    shown = client.get(response.url)
    token = re.search(r'<code id="integration-token">([^<]+)</code>', shown.content.decode()).group(1)
    assert len(token) >= 20 and shown["Cache-Control"] == "no-store"
    reloaded = client.get(response.url).content.decode()
    assert token not in reloaded and 'id="integration-token-gone"' in reloaded
    assert Integration.objects.count() == 1
    # The token is the one that authenticates (its hash is what is stored).
    from django.test import Client

    api = Client(HTTP_AUTHORIZATION=f"Integration {token}")
    assert api.get("/api/videos/").status_code == 200
    assert Client(HTTP_AUTHORIZATION="Integration wrong-token").get("/api/videos/").status_code in (401, 403)
