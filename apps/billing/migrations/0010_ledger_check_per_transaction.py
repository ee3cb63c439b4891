from django.db import migrations

from apps.core.migration_sql import postgresql_sql

# The statement-level balance check of 0008 in two plain queries whose plans stay good as the
# ledger grows: the old single query (LIMIT 1, a join to the accounts per transaction) was
# planned once by PL/pgSQL on small tables and then walked every ledger transaction, or every
# account, for each transaction a statement touched. Now: the currency of the new entries
# (one join), then one index probe per touched transaction for its legs and sum.
FORWARD = """
CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger AS $$
DECLARE
    bad record;
BEGIN
    -- Every new entry is in its transaction's currency (so each transaction has one currency:
    -- its earlier entries were checked when they were written).
    SELECT min(n.transaction_id) AS id, count(*) AS entries INTO bad
      FROM new_entries n
      JOIN billing_ledgeraccount a ON a.id = n.account_id
      JOIN billing_ledgertransaction t ON t.id = n.transaction_id
     WHERE a.currency <> t.currency;
    IF bad.entries > 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: % entries in another currency', bad.id, bad.entries
            USING ERRCODE = 'check_violation';
    END IF;
    -- Every transaction the statement touched has two or more entries summing to zero.
    SELECT min(n.transaction_id) AS id, count(*) AS transactions INTO bad
      FROM (SELECT DISTINCT transaction_id FROM new_entries) n
      CROSS JOIN LATERAL (
          SELECT count(*) AS legs, coalesce(sum(e.amount), 0) AS total
            FROM billing_ledgerentry e WHERE e.transaction_id = n.transaction_id) s
     WHERE s.legs < 2 OR s.total <> 0;
    IF bad.transactions > 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% unbalanced in this statement)',
            bad.id, bad.transactions USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_profile_balance_alert")]
    operations = [postgresql_sql(FORWARD)]
