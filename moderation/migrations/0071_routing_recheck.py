"""The videos the ops page's routing panel checks again (``RoutingRecheck``): triggers add each video whose
decisions, review items, awaited rows, queue, status or policies a statement changed in a way that could leave it
inconsistently routed (``routing_orphans``' ``unrouted`` and ``other_policy``) or half-decided
(``videos_missing_auto_decision``); then every decided video, so the first check finds what older data holds.
Creating the triggers locks their tables against writes until this migration commits, so no change falls between.

Only what could make a video inconsistent adds it: a decision made, moved or deleted; an item deleted, or made,
moved or put back in a way that could leave it pending in a queue for another policy, or no longer counting as the
decision's item (gold, another decision or queue); an awaited row deleted or moved; a queue that changed kind or
policy (its items' videos); a video leaving the media pipeline; a policy made auto-applied, or an active version of
one made (the decided videos lacking a decision under it). A claim or a decision on an item adds nothing."""

from django.db import migrations, models

IN_FLIGHT = "('uploaded', 'processing')"

RECHECK_SQL = f"""
CREATE FUNCTION routing_recheck_decisions() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO moderation_routingrecheck (video_id) SELECT DISTINCT video_id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO moderation_routingrecheck (video_id) SELECT DISTINCT video_id FROM old_rows;
    ELSE
        INSERT INTO moderation_routingrecheck (video_id) VALUES (OLD.video_id), (NEW.video_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION routing_recheck_items() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Only a pending item can be in a queue for another policy.
        INSERT INTO moderation_routingrecheck (video_id)
        SELECT DISTINCT d.video_id FROM new_rows n JOIN moderation_decision d ON d.id = n.decision_id
        WHERE n.status = 'pending' AND NOT n.is_gold;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO moderation_routingrecheck (video_id)
        SELECT DISTINCT d.video_id FROM old_rows o JOIN moderation_decision d ON d.id = o.decision_id
        WHERE NOT o.is_gold;
    ELSE
        INSERT INTO moderation_routingrecheck (video_id)
        SELECT video_id FROM moderation_decision WHERE id IN (OLD.decision_id, NEW.decision_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION routing_recheck_awaited() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO moderation_routingrecheck (video_id)
        SELECT DISTINCT d.video_id FROM old_rows o JOIN moderation_decision d ON d.id = o.decision_id;
    ELSE
        INSERT INTO moderation_routingrecheck (video_id)
        SELECT video_id FROM moderation_decision WHERE id = OLD.decision_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Every decided video: a whole table of items or awaited rows emptied at once.
CREATE FUNCTION routing_recheck_all() RETURNS trigger AS $$
BEGIN
    INSERT INTO moderation_routingrecheck (video_id) SELECT DISTINCT video_id FROM moderation_decision;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION routing_recheck_queue() RETURNS trigger AS $$
BEGIN
    INSERT INTO moderation_routingrecheck (video_id)
    SELECT DISTINCT d.video_id FROM moderation_reviewtask t JOIN moderation_decision d ON d.id = t.decision_id
    WHERE t.queue_id = NEW.id AND NOT t.is_gold AND (OLD.kind <> NEW.kind OR t.status = 'pending');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION routing_recheck_video() RETURNS trigger AS $$
BEGIN
    INSERT INTO moderation_routingrecheck (video_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- The decided videos lacking a decision under one policy: it became auto-applied, or it has a new active version.
CREATE FUNCTION routing_recheck_lacking(policy bigint) RETURNS void AS $$
    INSERT INTO moderation_routingrecheck (video_id)
    SELECT v.id FROM moderation_video v
    WHERE EXISTS (SELECT 1 FROM moderation_decision d WHERE d.video_id = v.id)
        AND NOT EXISTS (
            SELECT 1 FROM moderation_decision d JOIN moderation_policyversion pv ON pv.id = d.policy_version_id
            WHERE d.video_id = v.id AND pv.policy_id = policy
        );
$$ LANGUAGE sql;

CREATE FUNCTION routing_recheck_policy() RETURNS trigger AS $$
BEGIN
    PERFORM routing_recheck_lacking(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION routing_recheck_policy_version() RETURNS trigger AS $$
BEGIN
    IF NEW.is_active AND EXISTS (SELECT 1 FROM moderation_policy WHERE id = NEW.policy_id AND auto_apply) THEN
        PERFORM routing_recheck_lacking(NEW.policy_id);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.policy_id <> NEW.policy_id THEN  -- its decisions now count under another policy
        INSERT INTO moderation_routingrecheck (video_id)
        SELECT DISTINCT video_id FROM moderation_decision WHERE policy_version_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER routing_recheck_decision_insert AFTER INSERT ON moderation_decision
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_decisions();
CREATE TRIGGER routing_recheck_decision_delete AFTER DELETE ON moderation_decision
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_decisions();
CREATE TRIGGER routing_recheck_decision_update AFTER UPDATE OF video_id, policy_version_id ON moderation_decision
    FOR EACH ROW
    WHEN (OLD.video_id <> NEW.video_id OR OLD.policy_version_id <> NEW.policy_version_id)
    EXECUTE FUNCTION routing_recheck_decisions();

CREATE TRIGGER routing_recheck_item_insert AFTER INSERT ON moderation_reviewtask
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_items();
CREATE TRIGGER routing_recheck_item_delete AFTER DELETE ON moderation_reviewtask
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_items();
-- Row by row with a condition, so a claim, a renewal or a decision (pending → claimed → done) calls nothing.
CREATE TRIGGER routing_recheck_item_update
    AFTER UPDATE OF status, queue_id, decision_id, is_gold ON moderation_reviewtask FOR EACH ROW
    WHEN (
        (NEW.status = 'pending' AND OLD.status <> 'pending') OR OLD.queue_id <> NEW.queue_id
        OR OLD.decision_id <> NEW.decision_id OR OLD.is_gold <> NEW.is_gold
    )
    EXECUTE FUNCTION routing_recheck_items();
CREATE TRIGGER routing_recheck_item_truncate AFTER TRUNCATE ON moderation_reviewtask
    FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_all();

CREATE TRIGGER routing_recheck_awaited_delete AFTER DELETE ON moderation_awaitedqueueitem
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_awaited();
CREATE TRIGGER routing_recheck_awaited_update AFTER UPDATE OF decision_id ON moderation_awaitedqueueitem
    FOR EACH ROW WHEN (OLD.decision_id <> NEW.decision_id) EXECUTE FUNCTION routing_recheck_awaited();
CREATE TRIGGER routing_recheck_awaited_truncate AFTER TRUNCATE ON moderation_awaitedqueueitem
    FOR EACH STATEMENT EXECUTE FUNCTION routing_recheck_all();

CREATE TRIGGER routing_recheck_queue_update AFTER UPDATE OF kind, policy_id ON moderation_reviewqueue
    FOR EACH ROW WHEN (OLD.kind <> NEW.kind OR OLD.policy_id IS DISTINCT FROM NEW.policy_id)
    EXECUTE FUNCTION routing_recheck_queue();

CREATE TRIGGER routing_recheck_video_settled AFTER UPDATE OF status ON moderation_video
    FOR EACH ROW WHEN (OLD.status IN {IN_FLIGHT} AND NEW.status NOT IN {IN_FLIGHT})
    EXECUTE FUNCTION routing_recheck_video();

CREATE TRIGGER routing_recheck_policy_auto_applied AFTER UPDATE OF auto_apply ON moderation_policy
    FOR EACH ROW WHEN (NEW.auto_apply AND NOT OLD.auto_apply) EXECUTE FUNCTION routing_recheck_policy();

CREATE TRIGGER routing_recheck_policy_version_insert AFTER INSERT ON moderation_policyversion
    FOR EACH ROW WHEN (NEW.is_active) EXECUTE FUNCTION routing_recheck_policy_version();
CREATE TRIGGER routing_recheck_policy_version_update AFTER UPDATE OF is_active, policy_id ON moderation_policyversion
    FOR EACH ROW WHEN ((NEW.is_active AND NOT OLD.is_active) OR OLD.policy_id <> NEW.policy_id)
    EXECUTE FUNCTION routing_recheck_policy_version();

INSERT INTO moderation_routingrecheck (video_id) SELECT DISTINCT video_id FROM moderation_decision;
"""

RECHECK_REVERSE_SQL = """
DROP TRIGGER IF EXISTS routing_recheck_decision_insert ON moderation_decision;
DROP TRIGGER IF EXISTS routing_recheck_decision_delete ON moderation_decision;
DROP TRIGGER IF EXISTS routing_recheck_decision_update ON moderation_decision;
DROP TRIGGER IF EXISTS routing_recheck_item_insert ON moderation_reviewtask;
DROP TRIGGER IF EXISTS routing_recheck_item_delete ON moderation_reviewtask;
DROP TRIGGER IF EXISTS routing_recheck_item_update ON moderation_reviewtask;
DROP TRIGGER IF EXISTS routing_recheck_item_truncate ON moderation_reviewtask;
DROP TRIGGER IF EXISTS routing_recheck_awaited_delete ON moderation_awaitedqueueitem;
DROP TRIGGER IF EXISTS routing_recheck_awaited_update ON moderation_awaitedqueueitem;
DROP TRIGGER IF EXISTS routing_recheck_awaited_truncate ON moderation_awaitedqueueitem;
DROP TRIGGER IF EXISTS routing_recheck_queue_update ON moderation_reviewqueue;
DROP TRIGGER IF EXISTS routing_recheck_video_settled ON moderation_video;
DROP TRIGGER IF EXISTS routing_recheck_policy_auto_applied ON moderation_policy;
DROP TRIGGER IF EXISTS routing_recheck_policy_version_insert ON moderation_policyversion;
DROP TRIGGER IF EXISTS routing_recheck_policy_version_update ON moderation_policyversion;
DROP FUNCTION IF EXISTS routing_recheck_decisions();
DROP FUNCTION IF EXISTS routing_recheck_items();
DROP FUNCTION IF EXISTS routing_recheck_awaited();
DROP FUNCTION IF EXISTS routing_recheck_all();
DROP FUNCTION IF EXISTS routing_recheck_queue();
DROP FUNCTION IF EXISTS routing_recheck_video();
DROP FUNCTION IF EXISTS routing_recheck_policy();
DROP FUNCTION IF EXISTS routing_recheck_policy_version();
DROP FUNCTION IF EXISTS routing_recheck_lacking(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0070_outbox_event_webhook_test"),
    ]

    operations = [
        migrations.CreateModel(
            name="RoutingRecheck",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("video_id", models.BigIntegerField()),
            ],
        ),
        migrations.RunSQL(RECHECK_SQL, RECHECK_REVERSE_SQL),
    ]
