"""Tocsin's services: ingest, classify, notify, and the embedded dev stack."""
