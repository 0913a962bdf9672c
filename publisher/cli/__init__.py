"""The ``publish`` command: a thin click layer over the pipeline.

It reads the configuration, calls one step, prints the report (or ``--json``), and
is the only place that turns errors into messages and exit codes: 2 for bad
configuration or usage, 1 for a failed run. ``app`` holds the group; each module
beside it adds its commands.
"""

from publisher.cli.collector import importing

with importing():
    from publisher.cli.app import main

__all__ = ["main"]
