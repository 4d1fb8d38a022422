"""Review-queue names and descriptions, reviewers' skip reasons and the names and criteria of taxonomies stored before
``workbench.text.shown_text`` / ``shown_name`` were applied to them lose their invisible bidi controls once, as free
text did in 0057 (new ones are stored without them). A taxonomy's keys are labels decisions store: left as they are.
The audit log is append-only: its payloads are cleaned where they are shown instead."""

from django.db import migrations
from django.db.models import Q, TextField
from django.db.models.functions import Cast

# As ``workbench.text`` drops them when this was written (a migration keeps its own copy).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_DROP = {ord(c): None for c in BIDI_CONTROLS}

TEXT_FIELDS = [("ReviewQueue", ["name", "description"]), ("ReviewSkip", ["reason"])]


def _holding(fields):
    holding = Q()
    for control in BIDI_CONTROLS:
        for field in fields:
            holding |= Q(**{f"{field}__contains": control})
    return holding


def _clean(value):
    return value.translate(_DROP).strip() if isinstance(value, str) else value


def _taxonomy_clean(taxonomy):
    if not isinstance(taxonomy, list):
        return taxonomy
    out = []
    for category in taxonomy:
        if not isinstance(category, dict):
            out.append(category)
            continue
        category = {**category, "name": _clean(category.get("name"))} if "name" in category else dict(category)
        tags = category.get("tags")
        if isinstance(tags, list):
            clean_tags = []
            for tag in tags:
                if isinstance(tag, dict):
                    tag = dict(tag)
                    if "name" in tag:
                        tag["name"] = _clean(tag["name"])
                    if isinstance(tag.get("criteria"), list):
                        tag["criteria"] = [_clean(c) for c in tag["criteria"]]
                clean_tags.append(tag)
            category["tags"] = clean_tags
        out.append(category)
    return out


def strip_bidi_controls(apps, schema_editor):
    for name, fields in TEXT_FIELDS:
        model = apps.get_model("moderation", name)
        for row in model.objects.filter(_holding(fields)).only("pk", *fields).iterator():
            model.objects.filter(pk=row.pk).update(**{f: _clean(getattr(row, f)) for f in fields})
    PolicyVersion = apps.get_model("moderation", "PolicyVersion")
    versions = PolicyVersion.objects.annotate(taxonomy_text=Cast("taxonomy", TextField()))
    for version in versions.filter(_holding(["taxonomy_text"])).only("pk", "taxonomy").iterator():
        PolicyVersion.objects.filter(pk=version.pk).update(taxonomy=_taxonomy_clean(version.taxonomy))


class Migration(migrations.Migration):
    dependencies = [("moderation", "0060_repro_retrieval_retry_dismiss")]

    operations = [migrations.RunPython(strip_bidi_controls, migrations.RunPython.noop)]
