"""publisher: feeds and an email digest for a newsroom.

The data flows one way: sources -> collect -> store -> {feeds + web edition, digest}
-> delivery. ``publisher.pipeline`` tells that story; the CLI, the scheduler and the
web server only trigger it.
"""

__version__ = "0.1.0"
