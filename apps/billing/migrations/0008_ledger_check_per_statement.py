from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# The entries' balance check runs once per INSERT statement over the transactions it touched
# (a transition table), instead of once per entry at commit: rating posts the calls of a batch
# as thousands of entries in one statement, and a per-row check re-summed each transaction
# once per entry. Every writer inserts a transaction's entries in one statement, after the
# transaction row. The per-transaction deferred trigger stays: at commit, every transaction
# still has two or more entries summing to zero.
FORWARD = """
DROP TRIGGER IF EXISTS ledger_entry_balanced ON billing_ledgerentry;
DROP FUNCTION IF EXISTS ledger_entry_balanced();

CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger AS $$
DECLARE
    bad record;
BEGIN
    SELECT t.id, count(*) AS legs, sum(e.amount) AS total, count(DISTINCT a.currency) AS currencies
      INTO bad
      FROM (SELECT DISTINCT transaction_id FROM new_entries) n
      JOIN billing_ledgertransaction t ON t.id = n.transaction_id
      JOIN billing_ledgerentry e ON e.transaction_id = t.id
      JOIN billing_ledgeraccount a ON a.id = e.account_id
     GROUP BY t.id
    HAVING count(*) < 2 OR sum(e.amount) <> 0 OR count(DISTINCT a.currency) <> 1
        OR count(*) FILTER (WHERE a.currency <> t.currency) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: % entries summing to % in % currencies',
            bad.id, bad.legs, bad.total, bad.currencies USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON billing_ledgerentry
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_balanced();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS ledger_entries_balanced ON billing_ledgerentry;
DROP FUNCTION IF EXISTS ledger_entries_balanced();
CREATE OR REPLACE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
BEGIN
    PERFORM ledger_check_balanced(NEW.transaction_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON billing_ledgerentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_auto_recharge")]
    operations = [postgresql_sql(FORWARD, BACKWARD)]
