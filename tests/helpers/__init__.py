"""Tools every test module shares: a query count with a reason per query
(`expect_queries`) and a race of functions started together (`run_concurrently`)."""
