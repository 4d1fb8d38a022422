"""Taxonomy keywords stored before ``taxonomy_normalise`` applied ``workbench.text.shown_text`` to them lose their
invisible bidi controls once, as names and criteria did in 0061 (new ones are stored without them). A keyword left
empty by it is dropped, and one that now repeats another is kept once: the editor refuses both on save."""

from django.db import migrations
from django.db.models import Q, TextField
from django.db.models.functions import Cast

# As ``workbench.text`` drops them when this was written (a migration keeps its own copy).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_DROP = {ord(c): None for c in BIDI_CONTROLS}


def _keywords_clean(keywords):
    out, seen = [], set()
    for keyword in keywords:
        if not isinstance(keyword, str):
            out.append(keyword)
            continue
        clean = keyword.translate(_DROP).strip()
        if clean and clean.lower() not in seen:
            seen.add(clean.lower())
            out.append(clean)
    return out


def _taxonomy_clean(taxonomy):
    if not isinstance(taxonomy, list):
        return taxonomy
    out = []
    for category in taxonomy:
        if isinstance(category, dict) and isinstance(category.get("tags"), list):
            tags = []
            for tag in category["tags"]:
                if isinstance(tag, dict) and isinstance(tag.get("keywords"), list):
                    tag = {**tag, "keywords": _keywords_clean(tag["keywords"])}
                tags.append(tag)
            category = {**category, "tags": tags}
        out.append(category)
    return out


def strip_bidi_controls(apps, schema_editor):
    PolicyVersion = apps.get_model("moderation", "PolicyVersion")
    holding = Q()
    for control in BIDI_CONTROLS:
        holding |= Q(taxonomy_text__contains=control)
    versions = PolicyVersion.objects.annotate(taxonomy_text=Cast("taxonomy", TextField()))
    for version in versions.filter(holding).only("pk", "taxonomy").iterator():
        cleaned = _taxonomy_clean(version.taxonomy)
        if cleaned != version.taxonomy:
            PolicyVersion.objects.filter(pk=version.pk).update(taxonomy=cleaned)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0062_video_in_pipeline_index")]

    operations = [migrations.RunPython(strip_bidi_controls, migrations.RunPython.noop)]
