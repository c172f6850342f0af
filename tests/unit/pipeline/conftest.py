"""Fixtures for the pipeline tests: the loopback page server."""

from __future__ import annotations

from tests.pages import page_server

__all__ = ["page_server"]
