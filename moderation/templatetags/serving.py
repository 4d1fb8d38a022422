"""``{% load serving %}{% serving_model_choices as model_versions %}``: the model versions a policy page
offers as its serving model, so the policies wing need not read inference's models."""

from __future__ import annotations

from django import template

from moderation.inference.models import ModelVersion
from moderation.inference.selectors import model_versions_for_choice

register = template.Library()


@register.simple_tag
def serving_model_choices() -> list[ModelVersion]:
    return model_versions_for_choice()
