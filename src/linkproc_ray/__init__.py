"""linkproc-ray: event-sourced link enrichment on Ray."""

__version__ = "0.1.0"
