"""The review screen tells a moderator when the model decided on a shortened text (its prompt was cut to fit
the model's context: Decision.prompt_cut_tokens), next to the model's reasoning."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.review.services import review_claim_next

pytestmark = pytest.mark.django_db


def test_the_review_screen_says_the_model_read_a_shortened_text(make_task, make_user):
    cut = make_task(decision__prompt_cut_tokens=2340, decision__video__title="Live-stream selling")
    short = make_task(decision__video__title="Noodles")
    pages = {}
    for _ in range(2):  # one item held at a time: a moderator for each
        user = make_user("moderator")
        task = review_claim_next(user=user)
        assert task is not None
        client = Client()
        client.force_login(user)
        pages[task.pk] = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert set(pages) == {cut.pk, short.pk}

    assert (
        "The model read a shortened text: 2,340 tokens of the transcript were left out (the middle of the item&#x27;s "
        "text, cut to fit the model&#x27;s context)." in pages[cut.pk]
    )
    assert pages[cut.pk].index('id="prompt-cut-note"') < pages[cut.pk].index('data-stage="')  # above the reasoning
    assert 'id="prompt-cut-note"' not in pages[short.pk]
