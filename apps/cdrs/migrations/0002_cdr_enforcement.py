from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# A CDR is what the edge recorded: PostgreSQL refuses, whatever the application does, to
# change any column but the rating ones, and to delete a CDR. The check compares the whole
# row less the rating columns, so a column added later is protected without a new trigger.
# (TRUNCATE is left alone: the tests empty tables with it.)
FORWARD = """
CREATE OR REPLACE FUNCTION cdr_only_rating_changes() RETURNS trigger AS $$
DECLARE
    rating text[] := ARRAY['rating_status', 'cost', 'currency', 'rated_at', 'rate_prefix', 'bundle_seconds'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'CDRs are never deleted (% %:%)', TG_TABLE_NAME, OLD.node, OLD.edge_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - rating) IS DISTINCT FROM (to_jsonb(OLD) - rating) THEN
        RAISE EXCEPTION 'a CDR never changes after import except its rating fields (%:%)', OLD.node, OLD.edge_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER cdr_only_rating_changes BEFORE UPDATE OR DELETE ON cdrs_cdr
    FOR EACH ROW EXECUTE FUNCTION cdr_only_rating_changes();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS cdr_only_rating_changes ON cdrs_cdr;
DROP FUNCTION IF EXISTS cdr_only_rating_changes();
"""


class Migration(migrations.Migration):
    dependencies = [("cdrs", "0001_initial")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
