"""System checks that hold the settings to what the policy editor needs (registered in ``ModerationConfig.ready``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from moderation.policies.editor import EDITOR_MAX_FIELDS


@register(Tags.compatibility)
def editor_fields_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Django refuses a form of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields before any view reads it: below the
    structured policy editor's most (``EDITOR_MAX_FIELDS``), a policy within the taxonomy's limit could not be
    saved from it."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if limit is None or limit >= EDITOR_MAX_FIELDS:
        return []
    return [
        Error(
            f"DATA_UPLOAD_MAX_NUMBER_FIELDS ({limit:,}) is below the {EDITOR_MAX_FIELDS:,} fields the structured "
            "policy editor sends for a taxonomy at its limit: such a policy could not be saved from the editor.",
            hint=f"Set DATA_UPLOAD_MAX_NUMBER_FIELDS to at least {EDITOR_MAX_FIELDS}.",
            id="moderation.E001",
        )
    ]
