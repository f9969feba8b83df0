"""Signed outbreak notices: the contract between a provider and its gateways (docs/notices.md)."""
