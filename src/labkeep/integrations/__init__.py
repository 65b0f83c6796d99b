"""Integrations with other tools: bridges that record their calls into labkeep runs, importers."""
