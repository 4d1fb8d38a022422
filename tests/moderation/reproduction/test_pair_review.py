"""The pair queue: claims, verdicts, the pair screen (hotkeys, sync data, escaping), roles and clusters."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from moderation.errors import ModerationError
from moderation.reproduction.models import ClusterMembership, PairReview, ReproCandidate
from moderation.reproduction.selectors import cluster_key_for, cluster_members
from moderation.reproduction.services import cluster_union, clusters_rebuild, pair_claim_next, pair_review_submit
from moderation.review.models import AuditEvent
from tests.factories import DecidedVideoFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def make_pair(score: float = 0.8, **kwargs) -> ReproCandidate:  # type: ignore[no-untyped-def]
    original = kwargs.pop("original", None) or DecidedVideoFactory()
    copy = kwargs.pop("video", None) or DecidedVideoFactory()
    return ReproCandidate.objects.create(
        video=copy, original=original, score=score, retrieval_score=score, offset=kwargs.pop("offset", 2.0),
        evidence={"alignment": {"offset": 2.0, "scale": 1.0, "mirrored": False, "coverage_copy": 0.8,
                                "coverage_original": 0.5, "matches": [{"t": 0.0, "t_orig": 2.0, "d": 4}]}},
        **kwargs,
    )  # fmt: skip


def test_claim_gives_the_highest_score_first_never_twice_and_skips_low_scores(make_user) -> None:  # type: ignore[no-untyped-def]
    low, high, mid = make_pair(0.1), make_pair(0.9), make_pair(0.5)
    alice, bob, carol = make_user("moderator"), make_user("moderator"), make_user("moderator")
    assert pair_claim_next(user=alice) == high
    assert pair_claim_next(user=alice) == high  # the pair she holds, not a second one
    assert pair_claim_next(user=bob) == mid
    assert pair_claim_next(user=carol) is None  # the 0.1 pair is below the queue threshold
    low.refresh_from_db()
    assert low.claimed_by_id is None
    assert AuditEvent.objects.filter(action="repro_pair_claim").count() == 2


def test_verdict_labels_the_pair_and_only_the_claimant_may_give_it(make_user) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair()
    alice, bob = make_user("moderator"), make_user("moderator")
    with pytest.raises(ModerationError):
        pair_review_submit(candidate=pair, user=alice, verdict="reproduction")  # not claimed
    pair_claim_next(user=alice)
    with pytest.raises(ModerationError):
        pair_review_submit(candidate=pair, user=bob, verdict="reproduction")
    with pytest.raises(ModerationError):
        pair_review_submit(candidate=pair, user=alice, verdict="maybe")
    review = pair_review_submit(candidate=pair, user=alice, verdict="derivative", note="adds commentary")
    assert review.verdict == "derivative" and PairReview.objects.count() == 1
    with pytest.raises(ModerationError):
        pair_review_submit(candidate=pair, user=alice, verdict="unrelated")  # one verdict per pair
    assert pair_claim_next(user=bob) is None  # reviewed pairs leave the queue
    assert cluster_key_for(pair.video) == f"video-{pair.video_id}"  # a derivative joins no cluster


def test_confirmed_reproductions_form_clusters_by_union() -> None:
    a, b, c, d, e = (DecidedVideoFactory() for _ in range(5))
    assert cluster_union(video_ids=[b.pk, c.pk]) == f"repro-{b.pk}"
    assert cluster_union(video_ids=[d.pk, e.pk]) == f"repro-{d.pk}"
    assert cluster_key_for(c) == cluster_key_for(b.pk) != cluster_key_for(d)
    # Linking c and e merges both clusters; a stays alone.
    key = cluster_union(video_ids=[e.pk, c.pk])
    assert key == f"repro-{b.pk}" and cluster_members(key) == sorted([b.pk, c.pk, d.pk, e.pk])
    assert cluster_key_for(a) == f"video-{a.pk}"


def test_cluster_rebuild_matches_confirmed_pairs(make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user("moderator")
    x, y, z = DecidedVideoFactory(), DecidedVideoFactory(), DecidedVideoFactory()
    p1 = make_pair(video=y, original=x)
    p2 = make_pair(video=z, original=y, score=0.7)
    for pair in (p1, p2):
        pair_claim_next(user=user)
        pair_review_submit(candidate=pair, user=user, verdict="reproduction")
    assert {cluster_key_for(v) for v in (x, y, z)} == {f"repro-{x.pk}"}
    ClusterMembership.objects.all().delete()
    assert clusters_rebuild() == 1
    assert {cluster_key_for(v) for v in (x, y, z)} == {f"repro-{x.pk}"}


def test_pair_screen_shows_hotkeys_sync_offset_and_escapes_titles(client_as) -> None:  # type: ignore[no-untyped-def]
    evil = "<script>alert('x')</script>"
    pair = make_pair(video=DecidedVideoFactory(title=evil), original=DecidedVideoFactory(title="Original <b>bold</b>"))
    SegmentFactory(video=pair.video, text="<img src=x onerror=alert(1)>")
    client = client_as("moderator")
    claimed = client.post(reverse("moderation:repro_claim_next"))
    assert claimed.status_code == 302 and claimed.url == reverse("moderation:repro_pair", args=[pair.pk])
    page = client.get(claimed.url).content.decode()
    assert evil not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<b>bold</b>" not in page
    for key in ("p", "d", "u"):
        assert f'data-hotkey="{key}"' in page and f"<kbd>{key}</kbd>" in page
    # r reveals media here as on every other screen; it never records a verdict.
    assert 'data-reveal-toggle data-hotkey="r"' in page
    assert 'value="reproduction" data-hotkey="p"' in page and page.count('data-hotkey="r"') == 1
    assert 'data-offset="2.0"' in page and "reproduction/pair_sync.js" in page
    assert "data-pair-left" in page and "data-pair-right" in page

    done = client.post(reverse("moderation:repro_submit", args=[pair.pk]), {"verdict": "reproduction"})
    assert done.status_code == 302
    assert PairReview.objects.get(candidate=pair).verdict == "reproduction"
    # Back to the pair just decided must load it afresh (reviewed), not the browser's copy with live buttons.
    again = client.get(claimed.url)
    assert "no-store" in again["Cache-Control"] and "data-pair-left" in again.content.decode()
    # Reviewed, the screen offers no verdict keys (its header still listed p / d / u, which did nothing)
    # and leads back to the reviewed pairs it is opened from; the verdict is whoever's recorded it.
    reviewed = again.content.decode()
    assert "<kbd>p</kbd>" not in reviewed and "<kbd>n</kbd> claim next pair" in reviewed
    assert f'<a href="{reverse("moderation:repro_reviewed")}">reviewed pairs</a>' in reviewed
    assert '<h2 class="panel-title">Verdict</h2>' in reviewed and "Your verdict" not in reviewed
    assert cluster_key_for(pair.video) == cluster_key_for(pair.original)
    queue = client.get(reverse("moderation:repro_queue"))
    assert queue.status_code == 200 and b"No pairs are waiting" in queue.content


def test_roles_labeler_is_refused_and_anonymous_goes_to_login(client, client_as) -> None:  # type: ignore[no-untyped-def]
    pair = make_pair()
    labeler = client_as("labeler")
    for name, args in (("moderation:repro_queue", []), ("moderation:repro_pair", [pair.pk])):
        assert labeler.get(reverse(name, args=args)).status_code == 403
        anonymous = client.get(reverse(name, args=args))
        assert anonymous.status_code == 302 and "/login" in anonymous.url
    assert labeler.post(reverse("moderation:repro_claim_next")).status_code == 403
    assert labeler.post(reverse("moderation:repro_submit", args=[pair.pk]), {"verdict": "unrelated"}).status_code == 403
    assert not PairReview.objects.exists()


def test_pair_screen_media_is_shielded_until_revealed(make_user) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    pair = make_pair()
    client = Client()
    client.force_login(make_user("moderator"))
    url = reverse("moderation:repro_pair", args=[pair.pk])
    assert 'data-shield class="shielded"' in client.get(url).content.decode()
    client.post(reverse("moderation:review_reveal"), {"reveal": "1", "next": url})
    assert 'data-shield class=""' in client.get(url).content.decode()


def test_pair_screen_says_which_side_lost_its_files(client_as, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from moderation.media.models import Keyframe

    settings.MEDIA_ROOT = tmp_path
    pair = make_pair()
    frames = {}
    for video, t in ((pair.video, 0.0), (pair.original, 2.0)):
        name = default_storage.save(f"keyframes/{video.pk}/000000.jpg", ContentFile(b"\xff\xd8jpeg"))
        frames[video.pk] = Keyframe.objects.create(video=video, index=0, timestamp=t, image=name)
    client = client_as("moderator")
    url = reverse("moderation:repro_pair", args=[pair.pk])
    html = client.get(url).content.decode()
    assert "data-pair-left" in html and "data-pair-right" in html and "media-missing" not in html

    root = Path(settings.MEDIA_ROOT)
    (root / pair.original.file.name).unlink()  # the earlier upload's video file
    (root / frames[pair.video.pk].image.name).unlink()  # the later upload's keyframe image
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="earlier-media-missing"' in html and 'id="later-media-missing"' in html
    assert "Missing from media storage: the video file" in html and "1 of 1 keyframe images" in html
    assert "data-pair-left" in html and "data-pair-right" not in html  # the later upload still plays
    assert "data-pair-play" not in html and "No media for this video" not in html  # its notice says why
    assert html.count('data-missing="video"') == 1
    assert html.count('data-missing="keyframe"') == 2  # in the matched pair and in the strip
    pair.video.refresh_from_db()
    pair.original.refresh_from_db()
    assert pair.video.missing_media == [frames[pair.video.pk].image.name]
    assert pair.original.missing_media == [pair.original.file.name]
    assert AuditEvent.objects.filter(action="media.missing").count() == 2


def test_a_pair_without_playable_media_says_so_and_offers_no_controls_that_cannot_work(client_as) -> None:  # type: ignore[no-untyped-def]
    # Both videos came without a file: "Play both" and "Reveal media" (and their keys) did nothing.
    pair = make_pair(video=DecidedVideoFactory(file=None), original=DecidedVideoFactory(file=None))
    client = client_as("moderator")
    client.post(reverse("moderation:repro_claim_next"))
    html = client.get(reverse("moderation:repro_pair", args=[pair.pk])).content.decode()
    assert 'id="later-no-media"' in html and 'id="earlier-no-media"' in html
    assert html.count("No media for this video") == 2
    assert "<video" not in html and "data-pair-play" not in html and "Play both" not in html
    assert "data-reveal-toggle" not in html and "Reveal media" not in html
    assert "<kbd>s</kbd>" not in html and "<kbd>r</kbd>" not in html
    assert "Neither video has media to play" in html and html.count("No keyframes.") == 2
    assert 'data-hotkey="p"' in html  # the verdict still can be given, from titles and transcripts

    # One side plays: it can be revealed, but there is nothing to play in sync with.
    one = make_pair(video=DecidedVideoFactory(), original=DecidedVideoFactory(file=None), score=0.7)
    html = client.get(reverse("moderation:repro_pair", args=[one.pk])).content.decode()
    assert "data-pair-left" in html and 'id="earlier-no-media"' in html and 'id="later-no-media"' not in html
    assert "data-pair-play" not in html and "<kbd>s</kbd>" not in html
    assert "data-reveal-toggle" in html and "<kbd>r</kbd>" in html
    assert "The earlier upload has no media file to play, so nothing plays in sync" in html
    assert "the keyframes seek the later upload alone" in html


def test_the_reviewed_count_links_to_the_reviewed_pairs_latest_first_without_hidden_ones(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """The queue said "N reviewed" with no way to list them; the list keeps restricted videos to their groups."""
    from django.contrib.auth.models import Group

    from moderation.review.models import ReviewQueue
    from tests.factories import ReviewTaskFactory

    admin = make_user("admin")
    experts = ReviewQueue.objects.create(slug="experts", name="Experts")
    experts.allowed_groups.add(Group.objects.create(name="experts"))
    pairs = []
    for verdict in ("reproduction", "unrelated", "derivative"):  # one after another: the latest verdict last
        pair = make_pair(0.9)
        assert pair_claim_next(user=admin) == pair
        pair_review_submit(candidate=pair, user=admin, verdict=verdict)
        pairs.append(pair)
    first, second, hidden = pairs
    ReviewTaskFactory(decision=hidden.original.decisions.get(), queue=experts)  # its earlier upload: the experts
    make_pair(0.95)  # waiting: not in the list

    client = client_as("moderator")
    queue = client.get(reverse("moderation:repro_queue")).content.decode()
    assert f'<a href="{reverse("moderation:repro_reviewed")}">2 reviewed</a>' in queue
    page = client.get(reverse("moderation:repro_reviewed")).content.decode()
    links = [reverse("moderation:repro_pair", args=[p.pk]) for p in (second, first)]
    assert all(f'href="{link}"' in page for link in links)
    assert page.index(links[0]) < page.index(links[1])  # the latest verdict first
    assert reverse("moderation:repro_pair", args=[hidden.pk]) not in page
    admin_page = client_as("admin").get(reverse("moderation:repro_reviewed")).content.decode()
    assert reverse("moderation:repro_pair", args=[hidden.pk]) in admin_page


def test_a_videos_page_links_to_the_pairs_it_is_in_with_their_verdicts(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked as a moderator: a re-encoded re-upload's page said nothing of the pair it was in (score .97); the pair
    screen was reachable only from the pair queue, and no longer once the pair had a verdict."""
    original = DecidedVideoFactory(title="Miracle herbal tea")
    copy = DecidedVideoFactory(title="Miracle tea (re-upload)")
    pair = make_pair(0.97, video=copy, original=original)
    make_pair(0.1, video=copy)  # below the queue's threshold: no one looks at it, not listed
    moderator = make_user("moderator")
    client = client_as("moderator")

    page = client.get(reverse("moderation:video_detail", args=[copy.pk])).content.decode()
    link = reverse("moderation:repro_pair", args=[pair.pk])
    assert f'<a href="{link}">Pair #{pair.pk}</a>' in page
    assert "may be a later copy of “Miracle herbal tea”" in page and "waiting for a verdict" in page
    assert page.count("Pair #") == page.count(link) == 1  # the low pair is not offered
    page = client.get(reverse("moderation:video_detail", args=[original.pk])).content.decode()
    assert link in page and "may be copied by the later “Miracle tea (re-upload)”" in page

    assert pair_claim_next(user=moderator) == pair
    pair_review_submit(candidate=pair, user=moderator, verdict="reproduction")
    page = client.get(reverse("moderation:video_detail", args=[copy.pk])).content.decode()
    assert link in page and "a later copy of “Miracle herbal tea”" in page and "<strong>Reproduction</strong>" in page

    alone = DecidedVideoFactory()
    page = client.get(reverse("moderation:video_detail", args=[alone.pk])).content.decode()
    assert 'id="repro-pairs"' in page and "No pair with another video scores 0.30 or more" in page


def test_a_videos_page_with_many_pairs_links_to_every_one_of_them_page_by_page(client_as, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The video's page listed its 10 strongest pairs and no more, while the review screen's re-upload line sent
    reviewers there for "N more later copies": a copy past the tenth was nowhere. The page says how many there are
    and links to the video's pairs screen, which lists every one the user may open, strongest first, page by page,
    in as many queries however many pairs there are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from moderation.reproduction import views
    from tests.factories import VideoFactory

    original = DecidedVideoFactory(title="Original")
    copies = [
        make_pair(round(0.99 - i * 0.01, 2), original=original, video=DecidedVideoFactory(title=f"Copy {i}"))
        for i in range(13)
    ]
    make_pair(0.1, original=original, video=DecidedVideoFactory(title="Weak"))  # below the threshold: not listed
    hidden = make_pair(0.995, original=original, video=VideoFactory(title="Not decided yet"))  # its uploader's only
    client = client_as("moderator")
    all_url = reverse("moderation:video_repro_pairs", args=[original.pk])

    page = client.get(reverse("moderation:video_detail", args=[original.pk])).content.decode()
    panel = page[page.index('id="repro-pairs"') : page.index("</section>", page.index('id="repro-pairs"'))]
    assert panel.count("Pair #") == 10 and "(the strongest 10 of 13)" in panel
    assert f'<a href="{all_url}">All 13 pairs of this video →</a> (3 more, weaker)' in panel
    assert reverse("moderation:repro_pair", args=[copies[10].pk]) not in panel
    lone = client.get(reverse("moderation:video_detail", args=[copies[0].video_id])).content.decode()
    assert "Pair #" in lone and "pairs of this video" not in lone  # all shown already: no link

    monkeypatch.setattr(views, "PAIRS_PER_PAGE", 5)
    listed: list[int] = []
    for number in (1, 2, 3):
        html = client.get(all_url, {"page": number}).content.decode()
        assert "Reproduction pairs of" in html and "“Original”" in html
        listed += [int(pk) for pk in re.findall(r'<a href="/repro/(\d+)/">Pair #\1</a>', html)]
        assert "Weak" not in html and "Not decided yet" not in html
    assert listed == [p.pk for p in copies]  # every one, once, the strongest first
    assert "page 3 of 3 (13 pairs)" in html and "may be copied by the later “Copy 12”" in html
    assert hidden.pk not in listed

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    video_page = reverse("moderation:video_detail", args=[original.pk])
    before = queries(all_url), queries(video_page)
    for _ in range(4):
        make_pair(0.5, original=original)
    assert (queries(all_url), queries(video_page)) == before
    assert "All 17 pairs of this video" in client.get(video_page).content.decode()

    # A video hidden from the user: its pairs screen is not found, as its page is.
    assert client.get(reverse("moderation:video_repro_pairs", args=[hidden.video_id])).status_code == 404


def test_a_videos_pairs_screen_lists_one_side_when_asked_and_says_so(client_as, make_user, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The review screen's "N more later copies" opened every pair of the video, both ways, under "Reproduction pairs
    of video #N": the copies were to be picked out of the earlier videos it copies and the pairs judged unrelated.
    ``?side=copies`` lists only the later copies (likely re-uploads: at or above the threshold, not judged unrelated),
    ``?side=originals`` only the earlier videos it copies; the page says which, its tabs reach all the pairs, and its
    pages keep the side."""
    from moderation.reproduction import views

    video = DecidedVideoFactory(title="The video")
    copies = [make_pair(round(0.9 - i * 0.01, 2), original=video, video=DecidedVideoFactory(title=f"Copy {i}"))
              for i in range(3)]  # fmt: skip
    unrelated = make_pair(0.95, original=video, video=DecidedVideoFactory(title="Judged unrelated"))
    PairReview.objects.create(
        candidate=unrelated, reviewer=make_user("moderator"), verdict=ReproCandidate.Label.UNRELATED
    )
    earlier = make_pair(0.8, video=video, original=DecidedVideoFactory(title="Earlier one"))
    client = client_as("moderator")
    url = reverse("moderation:video_repro_pairs", args=[video.pk])

    def listed(html: str) -> list[int]:
        return [int(pk) for pk in re.findall(r'<a href="/repro/(\d+)/">Pair #\1</a>', html)]

    html = client.get(url, {"side": "copies"}).content.decode()
    assert listed(html) == [p.pk for p in copies]
    assert f"<h1>Later copies of video #{video.pk}</h1>" in html
    assert "only the 3 later uploads that likely re-upload this video" in html
    tabs = html[html.index('id="video-pairs-side"') : html.index("</nav>", html.index('id="video-pairs-side"'))]
    assert (
        '<a href="?side=all">All pairs</a>' in tabs
        and '<strong aria-current="page">Later copies of it</strong>' in tabs
    )

    html = client.get(url, {"side": "originals"}).content.decode()
    assert listed(html) == [earlier.pk] and f"<h1>Earlier videos that video #{video.pk} copies</h1>" in html
    assert "only the one earlier video this video likely re-uploads" in html

    html = client.get(url, {"side": "all"}).content.decode()
    assert listed(html) == [unrelated.pk, *[p.pk for p in copies], earlier.pk]
    assert f"<h1>Reproduction pairs of video #{video.pk}</h1>" in html and "every pair, both ways" in html
    assert client.get(url).content.decode().count("Pair #") == 5  # no parameter: all of them, as before

    response = client.get(url, {"side": "sideways"})  # a hand-edited address: said, and every pair listed
    assert response.status_code == 400
    assert "There is no list of a video&#x27;s pairs “sideways”: showing all the video&#x27;s pairs." in (
        html := response.content.decode()
    )
    assert len(listed(html)) == 5

    monkeypatch.setattr(views, "PAIRS_PER_PAGE", 2)
    html = client.get(url, {"side": "copies"}).content.decode()
    assert '<a href="?side=copies&amp;page=2" rel="next">next →</a>' in html and "(3 pairs)" in html
    assert listed(client.get(url, {"side": "copies", "page": 2}).content.decode()) == [copies[2].pk]


def test_a_pair_opened_from_a_videos_page_is_claimed_there_not_the_queues_next(make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked from the video page's link: the pair screen said "Claim this pair from the queue" and its only button,
    "Claim next pair", handed out the highest-scoring pair instead of the one on screen."""
    from django.test import Client

    higher, pair = make_pair(0.99), make_pair(0.6)
    alice, bob = make_user("moderator"), make_user("moderator")
    as_alice, as_bob = Client(), Client()
    as_alice.force_login(alice)
    as_bob.force_login(bob)
    url, claim = reverse("moderation:repro_pair", args=[pair.pk]), reverse("moderation:repro_claim", args=[pair.pk])

    page = as_alice.get(url).content.decode()
    assert f'action="{claim}"' in page and 'data-hotkey="c">Claim this pair</button>' in page
    assert 'value="reproduction"' not in page
    response = as_alice.post(claim)
    assert response.status_code == 302 and response["Location"] == url
    pair.refresh_from_db()
    higher.refresh_from_db()
    assert pair.claimed_by == alice and higher.claimed_by is None
    assert 'value="reproduction" data-hotkey="p"' in as_alice.get(url).content.decode()  # her verdict buttons

    page = as_bob.get(url).content.decode()  # held by Alice: Bob is told, and cannot take it
    assert f"{alice.username} holds this pair until" in page and f'action="{claim}"' not in page
    page = as_bob.post(claim, follow=True).content.decode()
    assert f"{alice.username} holds this pair until" in page and "it was not claimed for you" in page
    pair.refresh_from_db()
    assert pair.claimed_by == alice

    pair_review_submit(candidate=pair, user=alice, verdict="unrelated")
    page = as_bob.post(claim, follow=True).content.decode()
    assert "Already reviewed: this pair has a recorded verdict." in page


def test_the_pair_queue_says_which_pair_its_user_holds_and_links_back_to_it(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked at 1440x900: after claiming the demo's only pair and going back to the queue, it read "0 waiting ·
    1 claimed" over "No pairs are waiting." with no way back to the pair held (the review and tags queues say it)."""
    from datetime import timedelta

    from django.utils import timezone

    original = DecidedVideoFactory(title="Cheap phones, DM me")
    pair = make_pair(0.9, video=DecidedVideoFactory(title="Fast cash tonight"), original=original)
    client = client_as("moderator")
    queue_url, link = reverse("moderation:repro_queue"), reverse("moderation:repro_pair", args=[pair.pk])

    assert 'id="held-pair"' not in client.get(queue_url).content.decode()
    assert client.post(reverse("moderation:repro_claim_next"))["Location"] == link
    page = client.get(queue_url).content.decode()
    assert f"You hold pair #{pair.pk}, “Fast cash tonight” against the earlier “Cheap phones, DM me”" in page
    assert f'<a href="{link}">continue</a>' in page and "No other pairs are waiting." in page

    other = client_as("moderator")  # someone else's queue does not name it
    assert 'id="held-pair"' not in other.get(queue_url).content.decode()
    ReproCandidate.objects.filter(pk=pair.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(queue_url).content.decode()  # a lapsed claim is anyone's again: listed as waiting instead
    assert 'id="held-pair"' not in page and "No pairs are waiting." not in page
    bob = make_user("moderator")  # takes it over and decides it
    assert pair_claim_next(user=bob) == pair
    pair_review_submit(candidate=pair, user=bob, verdict="reproduction")
    assert 'id="held-pair"' not in client.get(queue_url).content.decode()


def test_claim_next_does_not_give_back_a_held_pair_whose_video_was_hidden_since(make_user) -> None:  # type: ignore[no-untyped-def]
    """A pair the reviewer held was given back by "Claim next" even after one of its videos went to a queue
    restricted to other groups (the pair queue's "you hold" line already left it out): the claim and the line read
    the held pair from one selector, so they agree, and the reviewer goes on to a pair they may open."""
    from django.contrib.auth.models import Group

    from moderation.reproduction.selectors import pair_held_by
    from moderation.review.models import ReviewQueue
    from tests.factories import ReviewTaskFactory

    moderator = make_user("moderator")
    held, other = make_pair(0.9), make_pair(0.5)
    assert pair_claim_next(user=moderator) == held and pair_held_by(user=moderator) == held
    experts = ReviewQueue.objects.create(slug="experts-held", name="Experts")
    experts.allowed_groups.add(Group.objects.create(name="experts-held"))
    ReviewTaskFactory(decision=held.original.decisions.get(), queue=experts)

    assert pair_held_by(user=moderator) is None
    assert pair_claim_next(user=moderator) == other
    assert pair_held_by(user=moderator) == other


def test_a_mirrored_pairs_frame_similarity_reads_as_a_measure_with_a_mirrored_note(client_as) -> None:  # type: ignore[no-untyped-def]
    """The pair screen read "Frame similarity -0.822" for a mirrored re-upload: a cosine below 0 means no frame
    alike, and a mirrored copy says how its frames were compared."""
    pair = make_pair(frame_similarity=-0.822)
    pair.evidence["alignment"]["mirrored"] = True
    pair.save(update_fields=["evidence"])
    client = client_as("moderator")
    page = client.get(reverse("moderation:repro_pair", args=[pair.pk])).content.decode()
    shown = re.search(r'<dd id="frame-similarity">(.*?)</dd>', page, re.S)
    assert shown is not None and "-0.822" not in page
    assert shown.group(1).startswith("0 <small") and "mirrored copy, frames compared as uploaded" in shown.group(1)
    assert "its picture hashes matched it flipped" in shown.group(1)
    ReproCandidate.objects.filter(pk=pair.pk).update(frame_similarity=0.9714)
    page = client.get(reverse("moderation:repro_pair", args=[pair.pk])).content.decode()
    assert re.search(
        r'<dd id="frame-similarity">0\.971 <small class="hint">· mirrored copy, frames compared flipped', page
    )
    pair.evidence["alignment"]["mirrored"] = False
    ReproCandidate.objects.filter(pk=pair.pk).update(frame_similarity=-0.2, evidence=pair.evidence)
    page = client.get(reverse("moderation:repro_pair", args=[pair.pk])).content.decode()
    assert '<dd id="frame-similarity">0 <small class="hint">(no frames alike)</small></dd>' in page


def test_claim_next_pair_is_disabled_once_no_pair_waits(make_user) -> None:  # type: ignore[no-untyped-def]
    """As an empty review queue's "Claim next": enabled while a pair waits or the reader holds one, else disabled
    and marked "empty" (it used to stay enabled and only answer "No pairs are waiting for a verdict.")."""
    from django.test import Client

    pair = make_pair()
    alice = make_user("moderator")
    client = Client()
    client.force_login(alice)

    def button() -> str:
        page = client.get(reverse("moderation:repro_queue")).content.decode()
        [found] = re.findall(r"<button[^>]*>Claim next pair</button>", page)
        return found

    assert "disabled" not in button() and 'data-hotkey="n"' in button()
    pair_claim_next(user=alice)
    assert "disabled" not in button()  # 0 waiting, but the pair she holds
    pair_review_submit(candidate=pair, user=alice, verdict="unrelated")
    assert "disabled" in button() and 'data-hotkey="n"' not in button()


def test_a_pair_verdict_says_which_pair_got_which_verdict(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked: after "u" the next pair showed under "Verdict recorded.", saying neither which pair nor what."""
    pair = make_pair(video=DecidedVideoFactory(), original=DecidedVideoFactory())
    client = client_as("moderator")
    client.post(reverse("moderation:repro_claim_next"))
    done = client.post(reverse("moderation:repro_submit", args=[pair.pk]), {"verdict": "derivative"}, follow=True)
    said = [str(m) for m in done.context["messages"]]
    assert said == [f"Recorded “Derivative with added value” for pair #{pair.pk}."]


def test_the_pairs_list_names_and_reads_its_numbers_as_the_pair_screen_does(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked: the list said "Score 0.55 · Student — · Coverage 0.50" with no word of what each is, beside a pair
    screen reading "Queue score 0.555" and "Hash coverage"."""
    pair = make_pair(0.5549, hash_score=0.8)
    page = client_as("moderator").get(reverse("moderation:repro_queue")).content.decode()
    head = page[page.index("<thead>") : page.index("</thead>")]
    assert "<th>Queue score</th>" in head and "<th>Hash coverage</th>" in head and "<th>Score</th>" not in head
    assert "Queue score: how alike the pair is, 0–1" in page and "Offset: where in the earlier upload" in page
    row = page[page.index(f"<td>#{pair.pk}</td>") :]
    assert "<td>0.555</td>" in row and "<td>0.800</td>" in row


def test_the_pair_screen_reads_hash_coverage_to_three_decimals_as_the_pairs_list_does(make_user):
    """Walked: the pairs list read Hash coverage 0.500, the pair screen "later 0.43 · earlier 0.50"."""
    from django.test import Client

    original, copy = DecidedVideoFactory(), DecidedVideoFactory()
    evidence = {"alignment": {"offset": 0.0, "coverage_copy": 0.4286, "coverage_original": 0.5, "matches": []}}
    pair = ReproCandidate.objects.create(video=copy, original=original, score=0.555, offset=0.0, evidence=evidence)
    client = Client()
    client.force_login(make_user("moderator"))
    page = client.get(f"/repro/{pair.pk}/").content.decode()
    assert "<dt>Hash coverage</dt><dd>later 0.429 · earlier 0.500</dd>" in page


def test_an_empty_pair_queue_says_how_pairs_arrive(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walk hwalk20: after the demo's only pair was decided the queue read "No pairs are waiting." under a disabled
    "Claim next pair", with no word of whether anything had to be done for more to come. It says they come by
    themselves as uploads are processed, and from what score."""
    page = client_as("moderator").get(reverse("moderation:repro_queue")).content.decode()
    empty = page[page.index("data-pairs-empty") :]
    empty = empty[: empty.index("</td>")]
    assert "No pairs are waiting." in empty and "joins this list by itself" in empty
    assert "a queue score of 0.30 or more" in empty and "nothing needs to be started here" in empty
