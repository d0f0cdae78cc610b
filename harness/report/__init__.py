"""Run reports: one self-contained HTML page per run, junit.xml, results.json, and an index of runs."""
