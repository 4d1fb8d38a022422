"""``{% load serving %}{% serving_model_choices as model_versions %}``: the model versions a policy page
offers as its serving model, and ``{% serving_model_global as global_model %}`` the one serving every
policy without its own, so the policies wing need not read inference's models."""

from __future__ import annotations

from django import template

from moderation.inference.models import ModelVersion
from moderation.inference.selectors import model_versions_for_choice
from moderation.inference.services import model_version_serving

register = template.Library()


@register.simple_tag
def serving_model_choices() -> list[ModelVersion]:
    return model_versions_for_choice()


@register.simple_tag
def serving_model_global() -> ModelVersion:
    """Named on the policy page: "the globally serving model" alone left an editor guessing which it is."""
    return model_version_serving()
