"""Importers for alt-text data: the MCM-DPO reference JSON/JSONL, generic JSONL and CSV."""
