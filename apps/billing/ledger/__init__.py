"""The ledger: double-entry postings and cached balances, credit moved between a company and its
SIP profiles, balances and statements."""
