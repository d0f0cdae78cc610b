"""Scenario replays: declared steps against a live lab, with expectations and a report."""
