"""The ``linkproc`` command line."""

from linkproc_ray.cli.app import app, main

__all__ = ["app", "main"]
