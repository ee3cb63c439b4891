from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# A CDR is what the edge recorded and its rating what the engine decided: PostgreSQL refuses,
# whatever the application does, to change either, or to delete a CDR. A rating that failed
# (status "error", no money moved) may be deleted so that staff can queue the CDR again.
# The checks are in WHEN clauses, evaluated without calling a function for rows they pass.
# (TRUNCATE is left alone: the tests empty tables with it.)
FORWARD = """
DROP TRIGGER IF EXISTS cdr_only_rating_changes ON cdrs_cdr;
DROP FUNCTION IF EXISTS cdr_only_rating_changes();

CREATE OR REPLACE FUNCTION cdrs_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are never changed or deleted (% on row %)', TG_TABLE_NAME, TG_OP,
        coalesce(to_jsonb(OLD) ->> 'cdr_id', to_jsonb(OLD) ->> 'id')
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER cdr_never_changes BEFORE UPDATE OR DELETE ON cdrs_cdr
    FOR EACH ROW EXECUTE FUNCTION cdrs_refuse_change();
CREATE TRIGGER cdr_rating_never_changes BEFORE UPDATE ON cdrs_cdrrating
    FOR EACH ROW EXECUTE FUNCTION cdrs_refuse_change();
CREATE TRIGGER cdr_rating_kept_unless_failed BEFORE DELETE ON cdrs_cdrrating
    FOR EACH ROW WHEN (OLD.status <> 'error') EXECUTE FUNCTION cdrs_refuse_change();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS cdr_rating_kept_unless_failed ON cdrs_cdrrating;
DROP TRIGGER IF EXISTS cdr_rating_never_changes ON cdrs_cdrrating;
DROP TRIGGER IF EXISTS cdr_never_changes ON cdrs_cdr;
DROP FUNCTION IF EXISTS cdrs_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("cdrs", "0003_rating_beside_the_cdr")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
