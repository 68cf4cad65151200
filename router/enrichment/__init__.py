"""Enrichment: add business context to tickets before they are classified."""
