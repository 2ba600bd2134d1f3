-- PostgreSQL leaves half of each rollup page free in this version (HOT updates); SQLite updates
-- rows in place and has no such setting. Kept so both backends share versions.
SELECT 1;
