from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# Retention (CALL_RETENTION_MONTHS): a CDR and its rating may be deleted only by the retention
# purge, which sets `skypemanager.cdr_purge_before` for its own transaction (SET LOCAL), and
# only when the call started before that moment. Every other DELETE is still refused, and an
# UPDATE always is. The daily figures the reports read (cdrs_dailycalls) are never purged.
FORWARD = """
CREATE OR REPLACE FUNCTION cdrs_refuse_delete_unless_purged() RETURNS trigger AS $$
DECLARE
    purge_before text := current_setting('skypemanager.cdr_purge_before', true);
    started timestamptz;
BEGIN
    IF purge_before IS NOT NULL AND purge_before <> '' THEN
        IF TG_TABLE_NAME = 'cdrs_cdr' THEN
            started := OLD.started_at;
        ELSE
            SELECT c.started_at INTO started FROM cdrs_cdr c WHERE c.id = OLD.cdr_id;
        END IF;
        IF started IS NOT NULL AND started < purge_before::timestamptz THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '% rows are never changed or deleted (% on row %) but by the retention purge',
        TG_TABLE_NAME, TG_OP, coalesce(to_jsonb(OLD) ->> 'cdr_id', to_jsonb(OLD) ->> 'id')
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS cdr_never_changes ON cdrs_cdr;
CREATE TRIGGER cdr_never_changes BEFORE UPDATE ON cdrs_cdr
    FOR EACH ROW EXECUTE FUNCTION cdrs_refuse_change();
CREATE TRIGGER cdr_kept_for_retention BEFORE DELETE ON cdrs_cdr
    FOR EACH ROW EXECUTE FUNCTION cdrs_refuse_delete_unless_purged();
DROP TRIGGER IF EXISTS cdr_rating_kept_unless_failed ON cdrs_cdrrating;
CREATE TRIGGER cdr_rating_kept_unless_failed BEFORE DELETE ON cdrs_cdrrating
    FOR EACH ROW WHEN (OLD.status <> 'error') EXECUTE FUNCTION cdrs_refuse_delete_unless_purged();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS cdr_kept_for_retention ON cdrs_cdr;
DROP TRIGGER IF EXISTS cdr_never_changes ON cdrs_cdr;
CREATE TRIGGER cdr_never_changes BEFORE UPDATE OR DELETE ON cdrs_cdr
    FOR EACH ROW EXECUTE FUNCTION cdrs_refuse_change();
DROP TRIGGER IF EXISTS cdr_rating_kept_unless_failed ON cdrs_cdrrating;
CREATE TRIGGER cdr_rating_kept_unless_failed BEFORE DELETE ON cdrs_cdrrating
    FOR EACH ROW WHEN (OLD.status <> 'error') EXECUTE FUNCTION cdrs_refuse_change();
DROP FUNCTION IF EXISTS cdrs_refuse_delete_unless_purged();
"""


class Migration(migrations.Migration):
    dependencies = [("cdrs", "0009_staff_lists_growing_tables")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
