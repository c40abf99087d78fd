"""Orchestration versioning as the Durable extension does it: host.json settings, version comparison, matching.

``extensions.durableTask`` in host.json:

* ``defaultVersion`` — the version of new instances (client starts and sub-orchestrations) that name none.
* ``versionMatchStrategy`` — which instances this host runs: ``None`` (all), ``Strict`` (only its own
  version) or ``CurrentOrOlder`` (the default: its version and older ones).
* ``versionFailureStrategy`` — what happens to an instance it must not run: ``Reject`` (the default: its
  work waits for a host that may run it) or ``Fail`` (the instance fails).

Without a ``defaultVersion`` the devhost runs every instance (nothing to compare with). Comparison: empty
versions are equal and older than any other; two versions that both read as ``System.Version`` (2 to 4
dot-separated numbers) compare numerically; anything else compares as case-insensitive text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from devhost.app_loader import AppStartupError

MATCH_STRATEGIES = ("None", "Strict", "CurrentOrOlder")
FAILURE_STRATEGIES = ("Reject", "Fail")


def _config_error(path: Path, problem: str) -> AppStartupError:
    """A host.json versioning setting the devhost cannot use: a start-up error naming the file."""
    return AppStartupError(path, f"extensions.durableTask.{problem}")


@dataclass(frozen=True)
class Versioning:
    """The host's versioning settings."""

    default_version: str = ""
    match: str = "CurrentOrOlder"
    failure: str = "Reject"

    def mismatch(self, instance_version: str) -> str | None:
        """Why this host must not run an instance of ``instance_version``, or None when it may."""
        if not self.default_version or self.match == "None":
            return None
        order = compare_versions(instance_version, self.default_version)
        if self.match == "Strict" and order != 0:
            return (
                f"The orchestration version '{instance_version}' does not match this host's version "
                f"'{self.default_version}' (versionMatchStrategy Strict)."
            )
        if self.match == "CurrentOrOlder" and order > 0:
            return (
                f"The orchestration version '{instance_version}' is newer than this host's version "
                f"'{self.default_version}' (versionMatchStrategy CurrentOrOlder)."
            )
        return None


def _system_version(text: str) -> tuple[int, ...] | None:
    parts = text.split(".")
    if not 2 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def compare_versions(a: str | None, b: str | None) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b`` (the extension's rules)."""
    a, b = a or "", b or ""
    if not a or not b:
        return (a != "") - (b != "")
    va, vb = _system_version(a), _system_version(b)
    if va is not None and vb is not None:
        # System.Version: unset trailing components (build, revision) sort before zero
        pa, pb = va + (-1,) * (4 - len(va)), vb + (-1,) * (4 - len(vb))
        return (pa > pb) - (pa < pb)
    la, lb = a.lower(), b.lower()
    return (la > lb) - (la < lb)


def read_versioning(app_dir: Path) -> Versioning:
    """The versioning settings of the app's host.json (defaults when absent); one-line exit when invalid."""
    path = app_dir / "host.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Versioning()  # a missing or unreadable host.json is reported where it is loaded
    durable = ((data.get("extensions") or {}) if isinstance(data, dict) else {}).get("durableTask") or {}
    if not isinstance(durable, dict):
        return Versioning()
    default = durable.get("defaultVersion", "")
    match = durable.get("versionMatchStrategy", "CurrentOrOlder")
    failure = durable.get("versionFailureStrategy", "Reject")
    if not isinstance(default, str):
        raise _config_error(path, "defaultVersion must be a string")
    for name, value, allowed in (
        ("versionMatchStrategy", match, MATCH_STRATEGIES),
        ("versionFailureStrategy", failure, FAILURE_STRATEGIES),
    ):
        canon = {a.lower(): a for a in allowed}
        if not isinstance(value, str) or value.lower() not in canon:
            raise _config_error(path, f"{name} {value!r} is not one of {', '.join(allowed)}")
    return Versioning(default, {a.lower(): a for a in MATCH_STRATEGIES}[match.lower()], failure.lower().capitalize())
