"""Summarizers behind one protocol, and the rules every summary obeys. No Ray."""
