from __future__ import annotations

from typing import TYPE_CHECKING

from moderation.errors import ModerationError

if TYPE_CHECKING:
    from annotation.models import CotCorrection


class AnnotationError(ModerationError):
    """A labeling action was refused; the message can be shown to the labeler as it is."""


class StageRefused(AnnotationError):
    """One stage's text cannot be saved as it is; ``stage`` is its key, so the screen says it on that stage."""

    def __init__(self, message: str, *, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


class CorrectionConflict(AnnotationError):
    """Someone saved a newer revision of this correction since the form was loaded.

    ``current`` is that newer correction, so the screen can show the other labeler's text.
    """

    def __init__(self, message: str, *, current: CotCorrection) -> None:
        super().__init__(message)
        self.current = current
