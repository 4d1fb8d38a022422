"""The home page: each role sees what it works on first."""

from __future__ import annotations

import pytest
from django.test import Client

from moderation.review.services import review_claim_next, review_submit
from tests.factories import ReviewTaskFactory

pytestmark = pytest.mark.django_db


def _home(user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client.get("/").content.decode()


def test_each_role_gets_its_own_home(make_user, policy_version):
    first = ReviewTaskFactory(decision__policy_version=policy_version)
    ReviewTaskFactory(decision__policy_version=policy_version)
    moderator = make_user("moderator")
    review_claim_next(user=moderator)
    review_submit(task=first, user=moderator, verdict="approve")

    moderator_home = _home(moderator)
    assert 'id="home-review"' in moderator_home and "Today:</strong> 1 decided · 0 overrides" in moderator_home
    assert "Default" in moderator_home and 'id="home-labeling"' not in moderator_home
    assert 'id="home-ops"' not in moderator_home and 'id="home-policies"' not in moderator_home

    labeler_home = _home(make_user("labeler"))
    assert 'id="home-labeling"' in labeler_home and "Tag2CoT tasks open" in labeler_home
    assert 'id="home-review"' not in labeler_home

    editor_home = _home(make_user("policy_editor"))
    assert 'id="home-policies"' in editor_home and f"v{policy_version.number}" in editor_home
    assert 'id="home-review"' not in editor_home

    admin_home = _home(make_user("admin"))
    for panel in ("review", "labeling", "policies", "ops", "training"):
        assert f'id="home-{panel}"' in admin_home, panel

    assert "has no role yet" in _home(make_user(None))


def test_a_wrong_password_keeps_the_typed_username_and_focuses_the_password(make_user):
    """After "Wrong username or password." the username box was empty: the name had to be typed again."""
    make_user("moderator", username="mira", password="right-horse-battery")
    page = Client(REMOTE_ADDR="198.51.100.21").post("/login/", {"username": "mira", "password": "guess"})
    html = page.content.decode()
    assert "Wrong username or password." in html
    assert '<input name="username" value="mira" autocomplete="username" required>' in html
    assert 'type="password" autofocus' in html
    fresh = Client().get("/login/").content.decode()
    assert '<input name="username" value="" autofocus' in fresh and 'type="password" autofocus' not in fresh


def test_the_home_names_every_item_the_moderator_holds_and_offers_its_queue_again(make_user, policy_version):
    """Walked on the demo data: holding an item in "Content tags" and one in "Default" (nothing else pending there),
    the home named only the first, and the Default row offered no "Claim next": no way back to the second item."""
    from moderation.review.models import ReviewQueue

    moderator = make_user("moderator")
    default_item = ReviewTaskFactory(decision__policy_version=policy_version)
    review_claim_next(user=moderator)  # Default's only item: nothing is pending there now
    other = ReviewQueue.objects.create(name="Senior", slug="senior")
    other_item = ReviewTaskFactory(decision__policy_version=policy_version, queue=other)
    ReviewTaskFactory(decision__policy_version=policy_version, queue=other)  # still pending
    review_claim_next(user=moderator, queue=other)

    home = _home(moderator)

    held = home.split('id="home-held"', 1)[1].split("</p>", 1)[0]
    assert f"item #{default_item.pk}</a> in “Default”" in held and f"item #{other_item.pk}</a> in “Senior”" in held
    rows = home.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")
    default_row = next(r for r in rows if ">Default</a>" in r)
    assert "<td>0</td>" in default_row  # nothing pending...
    assert f'action="/review/q/{ReviewQueue.DEFAULT_SLUG}/claim/"' in default_row  # ...yet "Claim next" gives it back


def test_with_nothing_to_claim_the_review_panel_counts_the_videos_still_being_processed(make_user, policy_version):
    """Walked: right after an upload the home's review panel showed only empty queues, as if the upload were lost;
    the queue list said "N videos are still being processed". The panel says the same count (never a title)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from moderation.media.models import Video
    from tests.factories import DecidedVideoFactory, VideoFactory

    VideoFactory(title="secret upload one", status=Video.Status.PROCESSING, stage=Video.Stage.OCR)
    VideoFactory(title="secret upload two", status=Video.Status.UPLOADED)
    VideoFactory(title="secret stopped", status=Video.Status.FAILED)
    DecidedVideoFactory(title="already decided", status=Video.Status.PROCESSING)  # its items are in the queues
    moderator = make_user("moderator")

    with CaptureQueriesContext(connection) as queries:
        html = _home(moderator)
    line = html.split('id="home-review-waiting"')[1].split("</p>")[0]
    assert 'data-processing="2" data-failed="1"' in line
    assert "Nothing to claim yet: 2 videos are still being processed" in line
    assert "1 video has failed processing" in line
    assert "secret" not in html
    # Counted in the statement that reads the home's other counts (``workbench.db.aggregate_rows_read``).
    counted = [q["sql"] for q in queries.captured_queries if f'COUNT("{Video._meta.db_table}"."id") FILTER' in q["sql"]]
    assert len(counted) == 1 and " CROSS JOIN " in counted[0]

    # An item to claim: the panel offers it and still says what is on its way, as the queue list does (hwalk22
    # m01: "3 videos are still being processed" on Review queues, nothing on the home), with no read of its own.
    ReviewTaskFactory(decision__policy_version=policy_version)
    with CaptureQueriesContext(connection) as queries:
        html = _home(moderator)
    assert "Claim next" in html
    line = html.split('id="home-review-waiting"')[1].split("</p>")[0]
    assert "2 videos are still being processed" in line and "Nothing to claim yet" not in line
    assert "Nothing is waiting" not in line and "1 video has failed processing" in line
    assert len([q for q in queries.captured_queries if f'COUNT("{Video._meta.db_table}"."id") FILTER' in q["sql"]]) == 1


def test_the_home_offers_no_claim_in_a_queue_holding_only_what_the_moderator_escalated(make_user, policy_version):
    """Walk 21: the moderator escalated the demo's "Easy tomato soup" to "Senior review"; the home offered "Claim next"
    there (the queue list greyed it out and said why), and the press landed on the queue list saying there was
    nothing to claim. The home now offers the claim only where it would hand them something, says why not, and a
    colleague still gets the button. Today's count says "1 override", not "1 overrides"."""
    from moderation.review.models import ReviewQueue
    from moderation.review.services import review_escalate

    senior = ReviewQueue.objects.create(name="Senior review", slug="senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    moderator, colleague = make_user("moderator"), make_user("moderator")
    ReviewTaskFactory(decision__policy_version=policy_version)
    review_escalate(task=review_claim_next(user=moderator), user=moderator, reason="Needs a senior decision")
    overridden = ReviewTaskFactory(decision__policy_version=policy_version)
    review_claim_next(user=moderator)
    review_submit(task=overridden, user=moderator, verdict="override", label="不实信息", severity="low")

    def senior_row(user) -> str:  # type: ignore[no-untyped-def]
        rows = _home(user).split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")
        return next(r for r in rows if ">Senior review</a>" in r)

    row = senior_row(moderator)
    assert "<td>1</td>" in row  # the item is counted...
    assert "queue_claim_next" not in row and "/claim/" not in row  # ...but not offered to the one who escalated it
    assert "data-left-to-others" in row and "what you escalated or decided" in row
    today = _home(moderator).split("Today:</strong>", 1)[1].split("</p>", 1)[0]
    assert today.startswith(" 1 decided · 1 override") and "overrides" not in today, today
    row = senior_row(colleague)
    assert "/review/q/senior/claim/" in row and "data-left-to-others" not in row
