-- One definition of a trip (issue 21.4): the ingest's fold (ItemState.fold in
-- ingest/item_loops.py) is the one that counts trips, trip starts and duplicate returns,
-- as events arrive and when an item is folded again from its stored events. The
-- loop_events view (0003) restated it in SQL: migration 0010 built the first aggregates
-- from it, and since then only tests and bench/load.py's --verify read it, which now check
-- the aggregates against SPEC §7 written out on their own side. Nothing in production reads
-- it, so it goes.
DROP VIEW loop_events;
