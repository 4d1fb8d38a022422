"""A system check of TAG_VLM_MODEL against the model registry (registered in ``ModerationConfig.ready``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError


@register(Tags.database)
def tag_vlm_model_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Warning]:
    """TAG_VLM_MODEL naming no model version (a typo) or one that writes no free text asked no VLM, without a word:
    the videos simply got no VLM tags. The registry is in the database, so this runs where Django checks it
    (`manage.py check --database default`, `migrate`), not at every start, and only warns: a model registered after
    the deploy is named rightly all along, and a database not migrated yet (no registry table) is no error here.
    The curation page says the same (``selectors.tag_vlm_model_problem``)."""
    if not databases:
        return []
    from moderation.tagging.selectors import tag_vlm_model_problem

    try:
        problem = tag_vlm_model_problem()
    except DatabaseError:  # not migrated yet, or not reachable: `migrate` says so itself
        return []
    if not problem:
        return []
    return [
        Warning(
            problem,
            hint="Set the TAG_VLM_MODEL environment variable on the web, the infer and the media workers alike.",
            id="moderation.W001",
        )
    ]
