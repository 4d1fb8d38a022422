"""Which trusted label wins for an item: adjudication > review > import, in every reader."""

from __future__ import annotations

from moderation.inference.selectors import cascade_training_set
from moderation.labels.models import ItemLabel
from moderation.labels.selectors import item_label_map, item_labels_trusted
from tests.factories import VideoFactory
from training.evaluation import gold_items

SAFE, DEAL, PORN = "正向", "引导私下交易", "色情低俗"


def _label(video, source, label):  # type: ignore[no-untyped-def]
    return ItemLabel.objects.create(video=video, source=source, label=label)


def test_adjudication_beats_review_beats_import_whatever_the_order_written(policy_version) -> None:
    S = ItemLabel.Source
    all_three, review_import, import_only, adjudicated_first = (VideoFactory() for _ in range(4))
    _label(all_three, S.IMPORT, SAFE)
    _label(all_three, S.ADJUDICATION, PORN)
    _label(all_three, S.REVIEW, DEAL)  # written last: still loses to the adjudication
    _label(review_import, S.REVIEW, DEAL)
    _label(review_import, S.IMPORT, SAFE)  # an import after a review does not win
    _label(import_only, S.IMPORT, SAFE)
    _label(adjudicated_first, S.ADJUDICATION, SAFE)
    _label(adjudicated_first, S.IMPORT, DEAL)
    expected = {all_three.pk: PORN, review_import.pk: DEAL, import_only.pk: SAFE, adjudicated_first.pk: SAFE}

    assert item_label_map() == expected
    assert item_label_map(video_ids=[all_three.pk]) == {all_three.pk: PORN}
    # every reader uses it: the evaluation gold set and stage 1's training set
    assert {int(i.split(":")[1]): label for i, label, _ in gold_items(policy_version)} == expected
    training = cascade_training_set()
    assert sorted(training.labels) == sorted(expected.values())


def test_a_label_the_policy_does_not_know_falls_back_to_the_next(policy_version) -> None:
    video = VideoFactory()
    _label(video, ItemLabel.Source.ADJUDICATION, "retired-tag")
    _label(video, ItemLabel.Source.REVIEW, DEAL)

    assert [row.label for row in item_labels_trusted(labels=policy_version.label_names())] == [DEAL]
    assert [label for _, label, _ in gold_items(policy_version)] == [DEAL]
