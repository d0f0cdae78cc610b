"""Runtimes that start the lab's btcd and LND nodes (local processes or Docker containers)."""
