"""Triggers: the HTTP API, the Event Grid starter and the reconciliation timer."""
