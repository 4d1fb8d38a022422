"""Round 4's stage-1 signals (bench/stage1_signals.py): what they read and that the head can use them."""

from __future__ import annotations

import dataclasses

import numpy as np

from moderation.inference.kuaimod import kuaimod_bundle, kuaimod_parse_line
from moderation.inference.stage1.inputs import TextItem, stage1_input, stage1_tag_names
from moderation.inference.stage1.model import KNN, SPREAD, TAGS, Stage1Config, binary_head_fit
from tests.moderation.inference.kuaimod_samples import kuaimod_line


def test_the_tags_field_reads_only_the_state_free_sources_one_token_per_name() -> None:
    candidates = [("美食", "text"), ("小 龙虾", "embedding"), ("美食", "embedding"), ("搞笑", "similar"), ("", "text")]

    assert stage1_tag_names(candidates) == ("小_龙虾", "美食")  # learned sources (similar, ...) never count


def test_stage1_input_carries_the_stored_embedding_and_tag_names() -> None:
    record = kuaimod_parse_line(kuaimod_line("902", "正向", "做蛋糕", ocr="奶油", asr="打发"), line=1)
    bundle = dataclasses.replace(kuaimod_bundle(record), text_embedding=[0.6, 0.8], tag_names=["烘焙", "美食"])

    item = stage1_input(bundle)

    assert item.embedding == (0.6, 0.8) and item.tags == ("烘焙", "美食")
    assert stage1_input(kuaimod_bundle(record)).embedding is None


def _items(n: int, rng: np.random.Generator) -> tuple[list[TextItem], np.ndarray]:
    """Text that says nothing about the class; embeddings and tag names that do."""
    y = np.arange(n) % 2
    items = []
    for label in y:
        v = rng.normal(size=8) * 0.3
        v[0] += 2.0 if label else -2.0
        v /= np.linalg.norm(v)
        tags = ("赌博", "棋牌") if label else ("美食", "旅行")
        items.append(TextItem(title=f"视频 {rng.integers(3)}", embedding=tuple(v), tags=tags))
    return items, y


def test_each_signal_field_carries_the_class_the_text_does_not() -> None:
    rng = np.random.default_rng(0)
    items, y = _items(40, rng)
    probes, truth = _items(20, rng)
    blank = TextItem(title="视频 1")  # no embedding, no tags: no evidence either way
    for name in (TAGS, KNN, SPREAD):
        config = Stage1Config(name=name, fields=("title", name), stack_folds=3, stack_cs=(4.0,), neighbour_ks=(5,))
        head = binary_head_fit(items, y, config)
        p = head.predict_proba([*probes, blank])[:, 1]
        assert np.mean((p[:-1] > 0.5) == (truth == 1)) == 1.0, name
        assert abs(p[-1] - 0.5) < 0.25, name
        assert (name,) in head.kept
