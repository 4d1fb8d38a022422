from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

VOCABULARY = ["美食", "美食教程", "火锅", "猫\t喵星人", "旅游", "风景", "游戏", "手游", "舞蹈", "汽车", "生活记录"]


@pytest.fixture(scope="session")
def encode() -> Callable[[list[str]], Any]:
    """The real tagging encoder (multilingual-e5-small), loaded once per test session."""
    from moderation.tagging import encoder

    return encoder.encode


@pytest.fixture
def vocabulary(db, encode):  # type: ignore[no-untyped-def]
    """A small vocabulary, embedded with the real encoder."""
    from moderation.tagging.services import _VOCAB_CACHE, tags_embed_missing, tags_import

    _VOCAB_CACHE.clear()
    tags_import(lines=VOCABULARY)
    tags_embed_missing(encode=encode)
    yield
    _VOCAB_CACHE.clear()
