"""Load a Python v2 ``function_app.py`` and index its functions the way the Functions host does.

``load_app`` imports the module with the app directory on ``sys.path``, finds the module-level
``FunctionRegister`` (``func.FunctionApp`` / ``df.DFApp``), calls ``get_functions()`` exactly once
(it is one-shot) and sorts the functions by trigger type into a ``Registry``. Durable names follow
the extension: ``trigger.orchestration`` / ``trigger.activity`` if set, else the function name.
Also reads ``host.json`` (concurrency limits, ``functionTimeout``, HTTP route prefix) and
``local.settings.json`` ``Values`` (into ``os.environ`` without overriding).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FunctionInfo:
    """One indexed function."""

    name: str
    trigger_type: str
    trigger: Any
    callable: Any
    bindings: list[Any]
    client_binding_name: str | None = None
    wants_context: bool = False
    durable_name: str | None = None

    @property
    def is_async(self) -> bool:
        """True if the callable must be awaited."""
        return inspect.iscoroutinefunction(self.callable)


@dataclass
class HostConfig:
    """The parts of host.json devhost honours."""

    max_activities: int = 10
    max_orchestrators: int = 10
    function_timeout_s: float | None = 300.0
    route_prefix: str = "api"
    hub_name: str = "TestHubName"


@dataclass
class Registry:
    """All functions of the app, by kind."""

    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    orchestrators: dict[str, FunctionInfo] = field(default_factory=dict)
    activities: dict[str, FunctionInfo] = field(default_factory=dict)
    entities: dict[str, FunctionInfo] = field(default_factory=dict)
    http: list[FunctionInfo] = field(default_factory=list)
    timers: list[FunctionInfo] = field(default_factory=list)
    eventgrid: dict[str, FunctionInfo] = field(default_factory=dict)


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$")


def parse_timespan(text: str) -> float:
    """Parse a .NET TimeSpan ``[d.]hh:mm:ss[.fff]`` into seconds."""
    m = _TIMESPAN.match(text.strip())
    if not m:
        raise ValueError(f"bad TimeSpan: {text!r}")
    days = int(m.group(1) or 0)
    return days * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))


def read_host_config(app_dir: Path) -> HostConfig:
    """Read host.json (missing file → defaults)."""
    cfg = HostConfig()
    path = app_dir / "host.json"
    if not path.exists():
        return cfg
    data = json.loads(path.read_text(encoding="utf-8"))
    dt = (data.get("extensions") or {}).get("durableTask") or {}
    cfg.max_activities = int(dt.get("maxConcurrentActivityFunctions", cfg.max_activities))
    cfg.max_orchestrators = int(dt.get("maxConcurrentOrchestratorFunctions", cfg.max_orchestrators))
    cfg.hub_name = str(dt.get("hubName", cfg.hub_name))
    timeout = data.get("functionTimeout")
    if timeout is not None:
        secs = parse_timespan(str(timeout))
        cfg.function_timeout_s = None if secs <= 0 else secs
    http = (data.get("extensions") or {}).get("http") or {}
    if "routePrefix" in http:
        cfg.route_prefix = str(http["routePrefix"]).strip("/")
    return cfg


def load_local_settings(app_dir: Path) -> list[str]:
    """Copy local.settings.json ``Values`` into os.environ without overriding; return the names set."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return []
    values = json.loads(path.read_text(encoding="utf-8")).get("Values") or {}
    applied = []
    for key, value in values.items():
        if key not in os.environ:
            os.environ[key] = str(value)
            applied.append(key)
    return applied


def _find_register(module: Any) -> Any:
    from azure.functions.decorators.function_app import FunctionRegister

    for value in vars(module).values():
        if isinstance(value, FunctionRegister):
            return value
    raise RuntimeError(f"{module.__file__} defines no FunctionApp / DFApp instance")


def load_app(app_dir: Path, module_name: str = "function_app") -> Registry:
    """Import ``app_dir/function_app.py`` and index its functions."""
    app_dir = app_dir.resolve()
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    path = app_dir / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    app = _find_register(module)
    reg = Registry()
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        user = fn.get_user_function()
        bindings = list(fn.get_bindings())
        info = FunctionInfo(
            name=fn.get_function_name(), trigger_type=trigger.type, trigger=trigger, callable=user, bindings=bindings
        )
        for b in bindings:
            if getattr(b, "type", None) == "durableClient":
                info.client_binding_name = b.name
        try:
            params = inspect.signature(user).parameters
            binding_names = {b.name for b in bindings}
            info.wants_context = "context" in params and "context" not in binding_names
        except (TypeError, ValueError):
            info.wants_context = False
        reg.functions[info.name] = info
        ttype = trigger.type
        if ttype == "orchestrationTrigger":
            info.durable_name = getattr(trigger, "orchestration", None) or info.name
            reg.orchestrators[info.durable_name] = info
        elif ttype == "activityTrigger":
            info.durable_name = getattr(trigger, "activity", None) or info.name
            reg.activities[info.durable_name] = info
        elif ttype == "entityTrigger":
            info.durable_name = getattr(trigger, "entity_name", None) or info.name
            reg.entities[info.durable_name] = info
        elif ttype == "httpTrigger":
            reg.http.append(info)
        elif ttype == "timerTrigger":
            reg.timers.append(info)
        elif ttype == "eventGridTrigger":
            reg.eventgrid[info.name] = info
    return reg
