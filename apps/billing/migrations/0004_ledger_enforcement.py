from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# The ledger's rules, enforced by PostgreSQL whatever the application does:
# - entries and transactions are never updated or deleted;
# - at commit, every transaction has two or more entries, in one currency, summing to zero
#   (deferred constraint triggers, so the entries of one transaction are inserted first).
FORWARD = """
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON billing_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE OR REPLACE FUNCTION ledger_check_balanced(txn bigint) RETURNS void AS $$
DECLARE
    legs integer;
    total numeric;
    currencies integer;
    mismatched integer;
BEGIN
    SELECT count(*), coalesce(sum(e.amount), 0), count(DISTINCT a.currency),
           count(*) FILTER (WHERE a.currency <> t.currency)
      INTO legs, total, currencies, mismatched
      FROM billing_ledgertransaction t
      LEFT JOIN billing_ledgerentry e ON e.transaction_id = t.id
      LEFT JOIN billing_ledgeraccount a ON a.id = e.account_id
     WHERE t.id = txn;
    IF legs < 2 OR total <> 0 OR currencies <> 1 OR mismatched <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: % entries summing to % in % currencies',
            txn, legs, total, currencies USING ERRCODE = 'check_violation';
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
BEGIN
    PERFORM ledger_check_balanced(NEW.transaction_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_transaction_balanced() RETURNS trigger AS $$
BEGIN
    PERFORM ledger_check_balanced(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON billing_ledgerentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON billing_ledgertransaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON billing_ledgertransaction;
DROP TRIGGER IF EXISTS ledger_entry_balanced ON billing_ledgerentry;
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON billing_ledgertransaction;
DROP TRIGGER IF EXISTS ledger_entry_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS ledger_transaction_balanced();
DROP FUNCTION IF EXISTS ledger_entry_balanced();
DROP FUNCTION IF EXISTS ledger_check_balanced(bigint);
DROP FUNCTION IF EXISTS ledger_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_ledger")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
