"""Celery discovers tasks here; each wing keeps its own tasks module."""

from moderation.inference.tasks import run_inference
from moderation.media.tasks import process_video

__all__ = ["process_video", "run_inference"]
