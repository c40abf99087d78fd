"""ASP.NET-style HTTP route templates (``items/{id}``, ``{id:int}``, ``{name?}``, ``{*rest}``) and keys.

``RouteTable`` orders routes like the Functions host does in practice: more literal segments first,
then fewer parameters. ``Keys`` generates and persists the master key, the default function key
and the system keys in ``STATE/keys.json``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PARAM = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+(?:\([^)]*\))?))?(\?)?\}$")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "guid": r"[0-9a-fA-F-]{32,36}",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}


@dataclass
class Route:
    """One compiled template."""

    template: str
    regex: re.Pattern[str]
    literals: int
    params: int
    target: Any


def compile_template(template: str, target: Any) -> Route:
    """Compile a route template into an anchored regex with named groups."""
    parts = [p for p in template.strip("/").split("/") if p != ""]
    pattern = ""
    literals = params = 0
    for part in parts:
        m = _PARAM.match(part)
        if m:
            star, name, constraint, optional = m.groups()
            params += 1
            if star:
                pattern += f"(?:/(?P<{name}>.*))?"
                continue
            base = (constraint or "").split("(")[0].lower()
            inner = _CONSTRAINTS.get(base, r"[^/]+")
            seg = f"/(?P<{name}>{inner})"
            pattern += f"(?:{seg})?" if optional else seg
        else:
            literals += 1
            pattern += "/" + re.escape(part)
    return Route(template, re.compile(f"^{pattern}/?$", re.IGNORECASE), literals, params, target)


class RouteTable:
    """Ordered collection of routes."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, template: str, target: Any) -> None:
        """Register a template."""
        self.routes.append(compile_template(template, target))
        self.routes.sort(key=lambda r: (-r.literals, r.params))

    def match(self, path: str) -> list[tuple[Route, dict[str, str]]]:
        """All routes matching ``path`` (leading slash, no prefix), best first."""
        path = "/" + path.strip("/")
        if path == "/":
            path = ""
        found = []
        for r in self.routes:
            m = r.regex.match(path)
            if m:
                found.append((r, {k: v for k, v in m.groupdict().items() if v is not None}))
        return found


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600 from the moment it exists), atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Keys:
    """Host keys kept in ``STATE/keys.json``."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / "keys.json"
        data: dict[str, Any] = {}
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        if "masterKey" not in data:
            data["masterKey"] = secrets.token_urlsafe(32)
            changed = True
        data.setdefault("functionKeys", {})
        if "default" not in data["functionKeys"]:
            data["functionKeys"]["default"] = secrets.token_urlsafe(32)
            changed = True
        data.setdefault("systemKeys", {})
        for name in ("durabletask_extension", "eventgrid_extension"):
            if name not in data["systemKeys"]:
                data["systemKeys"][name] = secrets.token_urlsafe(32)
                changed = True
        if changed:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(path, json.dumps(data, indent=2))
        elif path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a keys file others could read, from an older devhost
        self.master: str = data["masterKey"]
        self.function: dict[str, str] = dict(data["functionKeys"])
        self.system: dict[str, str] = dict(data["systemKeys"])

    def allows(self, level: str, presented: str | None, system: str | None = None) -> bool:
        """Whether ``presented`` grants auth level ``anonymous|function|admin|system``."""
        if level == "anonymous":
            return True
        if not presented:
            return False
        if secrets.compare_digest(presented, self.master):
            return True
        if level == "function":
            return any(secrets.compare_digest(presented, k) for k in self.function.values())
        if level == "system" and system is not None:
            return secrets.compare_digest(presented, self.system.get(system, ""))
        return False
