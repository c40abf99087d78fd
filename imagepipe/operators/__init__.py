"""Operator tooling logic (pure, SDK-free): run summaries, history timelines, stats and dead-letter parsing.

The HTTP layer (``triggers/run_queries.py``, used by the runs and stats APIs) turns Durable client objects
into the status JSON of the management API (``name, instanceId, runtimeStatus, input, customStatus, output,
createdTime, lastUpdatedTime, historyEvents``) and hands plain dicts to these modules, so every rule here is
unit-tested without a host.
"""
