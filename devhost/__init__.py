"""devhost: a pure-Python local host for Azure Functions Python v2 apps.

Loads ``function_app.py``, serves HTTP triggers, runs Durable Functions orchestrations through the
SDK's own replay (host side of the out-of-process protocol), the Durable HTTP management API, timer
triggers and an Event Grid (blob-created) emulator backed by Azurite. See README.md, section "The devhost".
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
