"""Training jobs and evaluations over the API, for scripts: list and read them with their state, and start one.

A start goes through the service the screens' forms use (``training_job_start``, ``evaluation_start``), so the
GPU job cap (MAX_QUEUED_GPU_JOBS, counted under its advisory lock), the audit log and the checks apply once, in one
place: a full cap is 429 with ``Retry-After`` and the reason naming the cap (and the refusal is in the audit log, as
the form's is); any other refusal 400 with the service's words. A start that finds the same run open returns it
(200), as the form says "this is it"; a new one is 201. Writes take a ``write`` token
(``workbench.tokens.ExpiringTokenAuthentication`` refuses a ``read`` token's, naming its scope)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from moderation.errors import ModerationError
from training import selectors
from training.api.permissions import CanManageTraining
from training.api.serializers import (
    EvaluationRunSerializer,
    EvaluationStartSerializer,
    TrainingJobSerializer,
    TrainingJobStartSerializer,
)
from training.errors import GpuQueueFull, TrainingError
from training.evaluation import evaluation_start
from training.services import training_job_start

# Seconds a script is told to wait after the GPU queues were full: a queued job leaves the queue when a GPU worker
# takes it, which no rate predicts; a minute is what the screens' own progress panels poll at, give or take.
GPU_QUEUE_FULL_RETRY_AFTER_S = 60

_GPU_QUEUE_FULL = OpenApiResponse(
    description="The GPU queues are full: MAX_QUEUED_GPU_JOBS training jobs and evaluations are queued and not "
    "started yet (nothing was queued; try again after Retry-After seconds); or over your user's API request rate "
    "(USER_API_RATE_LIMIT)."
)


def _started(request: Request, start: Any) -> Response:
    """Run ``start`` (a start service, given the caller) and answer with the run and 201, or 200 for the open run it
    returned; the service's refusal as 429 (the cap) or 400."""
    asked_at = timezone.now()
    try:
        run, serializer = start(cast(User, request.user))
    except GpuQueueFull as exc:
        return Response(
            {"detail": str(exc)},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(GPU_QUEUE_FULL_RETRY_AFTER_S)},
        )
    except (TrainingError, ModerationError) as exc:  # ModerationError: no active policy version (a 500 before)
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    joined = run.created_at < asked_at
    return Response(serializer(run).data, status=status.HTTP_200_OK if joined else status.HTTP_201_CREATED)


class TrainingJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Any]):
    """Training jobs (SFT, DPO, GRPO), newest first, with their state and progress."""

    permission_classes = [CanManageTraining]
    serializer_class = TrainingJobSerializer

    def get_queryset(self) -> Any:
        return selectors.job_list()

    @extend_schema(
        request=TrainingJobStartSerializer,
        responses={
            201: TrainingJobSerializer,
            200: OpenApiResponse(
                TrainingJobSerializer, description="a job with these settings on this dataset was open: this is it"
            ),
            400: OpenApiResponse(description="an unknown dataset, a kind the dataset cannot train, a parameter "
                                 "out of range, a model outside the model folders, …"),
            429: _GPU_QUEUE_FULL,
        },
        description="Queue a training job on a dataset snapshot, as the training screen's form does.",
    )  # fmt: skip
    def create(self, request: Request) -> Response:
        body = TrainingJobStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return _started(
            request,
            lambda user: (
                training_job_start(
                    dataset=data["dataset"],
                    created_by=user,
                    kind=data.get("kind") or None,
                    base_model=data.get("base_model", ""),
                    params=data.get("params") or None,
                ),
                TrainingJobSerializer,
            ),
        )


class EvaluationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Any]):
    """Evaluations of model versions, newest first, with their state, progress and metrics."""

    permission_classes = [CanManageTraining]
    serializer_class = EvaluationRunSerializer

    def get_queryset(self) -> Any:
        return selectors.evaluation_list()

    @extend_schema(
        request=EvaluationStartSerializer,
        responses={
            201: EvaluationRunSerializer,
            200: OpenApiResponse(
                EvaluationRunSerializer, description="an evaluation of this model on this set was open: this is it"
            ),
            400: OpenApiResponse(description="an unknown model version, an empty gold set, a file outside "
                                 "MEDIA_IMPORT_ROOTS, …"),
            429: _GPU_QUEUE_FULL,
        },
        description="Queue an evaluation of a model version, as the model versions screen's form does.",
    )  # fmt: skip
    def create(self, request: Request) -> Response:
        body = EvaluationStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return _started(
            request,
            lambda user: (
                evaluation_start(
                    model_version=data["model_version"],
                    created_by=user,
                    eval_set=data["eval_set"],
                    file_path=data.get("file_path", ""),
                    policy_version=data.get("policy_version"),
                ),
                EvaluationRunSerializer,
            ),
        )
