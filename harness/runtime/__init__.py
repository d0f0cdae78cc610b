"""Runtimes that start the lab's btcd and LND nodes (local processes or Docker containers)."""

# The runtime choices every entry point offers (lab, lab run, pytest --lab-runtime, the harness):
# "auto" is Docker when a daemon answers, else processes.
RUNTIMES = ("process", "docker", "auto")
CONCRETE_RUNTIMES = ("process", "docker")
