"""A platform's external id belongs to its integration (``IntegrationVideo.external_id``, unique per integration),
not to one namespace shared by every platform (``Video.external_id`` was unique across all of them: platform B
sending A's id was told that it "already belongs to a different video file", a probe of A's ids, and could not
use its own id scheme).

Existing rows are kept: the external id of a video an integration submitted (an upload with no user behind it)
moves to the link of the integration that submitted it first, and leaves ``Video.external_id``, which stays the
workbench's own namespace (user uploads, manifests, KuaiMod and demo imports). Two set-based statements, no
per-row Python, so a large table migrates in one pass; the new column is nullable (no table rewrite).
"""

from django.db import migrations, models

MOVE_TO_LINKS = """
UPDATE moderation_integrationvideo AS iv
SET external_id = v.external_id
FROM moderation_video AS v
WHERE iv.video_id = v.id
  AND v.external_id IS NOT NULL
  AND v.source = 'upload'
  AND v.created_by_id IS NULL
  AND iv.id = (SELECT min(first.id) FROM moderation_integrationvideo AS first WHERE first.video_id = v.id)
"""
CLEAR_FROM_VIDEOS = """
UPDATE moderation_video AS v
SET external_id = NULL
FROM moderation_integrationvideo AS iv
WHERE iv.video_id = v.id AND iv.external_id = v.external_id
"""
# Back into the shared namespace where it is still free (one video per id: two platforms' equal ids cannot both go back).
MOVE_BACK = """
UPDATE moderation_video AS v
SET external_id = iv.external_id
FROM (
    SELECT DISTINCT ON (external_id) video_id, external_id
    FROM moderation_integrationvideo
    WHERE external_id IS NOT NULL
    ORDER BY external_id, id
) AS iv
WHERE v.id = iv.video_id
  AND v.external_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM moderation_video AS taken WHERE taken.external_id = iv.external_id)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0030_tag_set_description_limit"),
    ]

    operations = [
        migrations.AddField(
            model_name="integrationvideo",
            name="external_id",
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.RunSQL([MOVE_TO_LINKS, CLEAR_FROM_VIDEOS], reverse_sql=[MOVE_BACK]),
        migrations.AddConstraint(
            model_name="integrationvideo",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_id__isnull", False)),
                fields=("integration", "external_id"),
                name="external_id_per_integration",
            ),
        ),
    ]
