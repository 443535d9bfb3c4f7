"""Batch mode (docs/architecture.md, D10): each model's questions as provider batch files,
polled by workers and stored through the same answer rows as the synchronous path."""
