"""`bounty bench`: the performance suite of SPEC §9 (run it with `bounty bench --help`)."""
