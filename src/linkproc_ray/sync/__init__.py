"""Sync roles over the core: the backend that orders an org's log, the processor replica, live fan-out. No Ray."""
