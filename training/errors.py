from moderation.errors import error_text


class TrainingError(Exception):
    """A training-domain error whose message can be shown to the user as it is."""


class GateRefused(TrainingError):
    """The release gate refused a promotion; ``needs_evaluation``: what is missing is an evaluation
    (of the candidate, or of the serving version on the candidate's set), which only some roles may start."""

    def __init__(self, message: str, *, needs_evaluation: bool = False) -> None:
        super().__init__(message)
        self.needs_evaluation = needs_evaluation


class GpuQueueFull(TrainingError):
    """MAX_QUEUED_GPU_JOBS jobs are queued and not started yet: no other is queued (``gpu_job_slot_take``), and no
    shadow deployment is started (``gpu_queue_room_check``; ``started``: the message says "not started")."""

    def __init__(self, *, what: str, queued: int, limit: int, started: bool = False) -> None:
        super().__init__(
            f"The GPU queues are full: {queued} job{'s' if queued != 1 else ''} (training jobs and evaluations) "
            f"{'are' if queued != 1 else 'is'} queued and not started yet, the most MAX_QUEUED_GPU_JOBS ({limit}) "
            f"allows. This {what} was not {'started' if started else 'queued'}: wait until queued ones start, or "
            "cancel some, then start it again."
        )
        self.what = what
        self.queued = queued
        self.limit = limit


def training_error_text(exc: BaseException) -> str:
    """``moderation.errors.error_text`` with training's own errors read as they are too."""
    return error_text(exc, TrainingError)
