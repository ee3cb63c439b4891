from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# At commit, each new ledger transaction must have entries. Their balance and currency are
# checked by the statement-level trigger whenever entries are written (0008, 0010), so the
# deferred per-transaction check only has to find one entry: an index probe instead of
# re-summing every transaction at every commit.
FORWARD = """
CREATE OR REPLACE FUNCTION ledger_transaction_balanced() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM billing_ledgerentry WHERE transaction_id = NEW.id) THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: it has no entries', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
BACKWARD = """
CREATE OR REPLACE FUNCTION ledger_transaction_balanced() RETURNS trigger AS $$
BEGIN
    PERFORM ledger_check_balanced(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_ledger_check_per_transaction")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
