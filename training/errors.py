from moderation.errors import error_text


class TrainingError(Exception):
    """A training-domain error whose message can be shown to the user as it is."""


class GateRefused(TrainingError):
    """The release gate refused a promotion; ``needs_evaluation``: what is missing is an evaluation
    (of the candidate, or of the serving version on the candidate's set), which only some roles may start."""

    def __init__(self, message: str, *, needs_evaluation: bool = False) -> None:
        super().__init__(message)
        self.needs_evaluation = needs_evaluation


def training_error_text(exc: BaseException) -> str:
    """``moderation.errors.error_text`` with training's own errors read as they are too."""
    return error_text(exc, TrainingError)
