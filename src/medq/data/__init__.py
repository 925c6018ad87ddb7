"""Bundled real data (samples), phantoms derived from it, and benchmark builders."""
