"""Hand-off points where moderation's work continues elsewhere.

A wing or an upper app (annotation, training) that continues the work subscribes in its
``AppConfig.ready``; the sender never names what follows, so imports keep pointing down the layers
(``training → annotation → moderation``, and down moderation's wings: see the import-linter contract
in pyproject.toml). Each is sent inside the transaction that records the event; receivers queue their
task with ``workbench.queues.enqueue``, which waits for the commit.
"""

from __future__ import annotations

from django.dispatch import Signal

# A video's media is processed and it is ready for a decision. Keyword: video_id.
video_ready = Signal()

# A decision is to be routed into the review queues: a new one of the serving model, or one found already
# recorded when the item is decided again (routing is idempotent). Keyword: decision (the row, in the
# sender's transaction). The review wing, above inference, subscribes.
decision_to_review = Signal()

# A model's decision was recorded for a video (the serving model's, not a shadow's). Keyword: decision_id.
decision_recorded = Signal()

# Every auto-applied policy decided a video (run_inference succeeded). Keyword: video_id.
video_decided = Signal()

# A policy's serving model changed to another model (sent inside that transaction, so a receiver's
# writes — the model.promoted outbox event — commit with it). Keywords: policy, model_version.
serving_model_changed = Signal()

# Platform feedback events were stored and the videos' aggregates refreshed. Keyword: video_ids.
feedback_received = Signal()

# A screen found stored media of a video missing (or back again). Sent inside the transaction that records
# it on the video. Keywords: video, missing (the names missing now), new (names missing since this check),
# by (the user whose screen found it, or None).
media_missing_changed = Signal()

# An integration was switched on or off, or given a new token (sent inside that transaction). Keywords: integration,
# action ("integration.switch_on", "integration.switch_off", "integration.token_rotate", "integration.import_refused":
# a path outside its import folder, sent after the refused submission rolled back), by (the user or None),
# payload. The review wing writes it to the audit log.
integration_changed = Signal()

# A webhook endpoint was added, its events changed, enabled or disabled (by an admin, or by the sender after too many
# failed attempts: by None), or a delivery of it queued again (sent inside that transaction). Keywords: endpoint,
# action ("webhook.create", "webhook.events_set", "webhook.enable", "webhook.disable", "webhook.auto_disable",
# "webhook.redeliver", "webhook.test": a test event queued), by (the user or None), payload (never the signing
# secret). The review wing writes it to the audit log.
webhook_endpoint_changed = Signal()

# A signed-in user's server path was refused by video_submit (outside MEDIA_IMPORT_ROOTS, a platform integration's
# folder they may not read, or a symlink swapped in on the way), sent after the refused submission rolled back.
# Keywords: user, path, reason. The review wing writes it to the audit log ("video.import_refused").
user_import_refused = Signal()

# A policy version was published, or made active again (sent inside that transaction). Keywords: version, by (the
# user), action ("policy.publish" or "policy.activate"), payload (which version it replaced, the version it was
# started from, and whether the editor confirmed replacing changes it was not started from). The review wing writes
# it to the audit log.
policy_version_activated = Signal()

# A policy draft was saved (sent inside that transaction; a form sent twice that returns the same draft sends nothing).
# Keywords: version, by (the user), payload (the draft's number, the version it was started from, which of its
# fields differ from that version and the taxonomy's changes, as policy_draft_audit_payload lists them). The review
# wing writes it to the audit log as "policy.draft_save".
policy_draft_saved = Signal()

# The cascade's stage-1 model was switched off, or its routing (a threshold, a target accuracy) set by hand (sent inside
# that transaction). Keywords: model (the CascadeModel), action ("cascade.switch_off", "cascade.threshold_set",
# "cascade.target_set"), by (the user), payload. It changes which items a model decides with no human: the review wing
# writes it to the audit log.
cascade_changed = Signal()
