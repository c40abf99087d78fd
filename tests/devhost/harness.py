"""The devhost tier's test apps, and the shared devhost test support (``tests/support/devhost.py``)
under the names this tier's modules import."""

from __future__ import annotations

from pathlib import Path

from tests.support.devhost import ROOT, Devhost, Loop, free_port, wait_status

APPS = Path(__file__).resolve().parent / "apps"

__all__ = ["APPS", "ROOT", "Devhost", "Loop", "free_port", "wait_status"]
