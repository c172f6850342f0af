"""Enrichment steps: fetch, parse (metadata + readable text), summarize."""
