"""chatlab: one chat room, five ways to serve it. See README.md."""

__version__ = "0.1.0"
