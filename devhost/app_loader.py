"""Load a Python v2 ``function_app.py`` and index its functions the way the Functions host does.

``load_app`` imports the module with the app directory on ``sys.path``, finds the module-level
``FunctionRegister`` (``func.FunctionApp`` / ``df.DFApp``), calls ``get_functions()`` exactly once
(it is one-shot) and sorts the functions by trigger type into a ``Registry``. Durable names follow
the extension: ``trigger.orchestration`` / ``trigger.activity`` if set, else the function name.
Also reads ``host.json`` (concurrency limits, ``functionTimeout``, HTTP route prefix) and
``local.settings.json`` ``Values`` (into ``os.environ`` without overriding).

Start-up problems (a file that is not valid JSON, a setting of the wrong type, no ``function_app.py``, an
app that fails to import or to index) raise ``AppStartupError``: one line naming the file and the problem,
for an import failure the exception and the app's own ``file:line`` (no traceback).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
from collections.abc import Callable
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


class AppStartupError(Exception):
    """The app cannot be loaded; ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``AppStartupError`` when it is not valid JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AppStartupError(path, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AppStartupError(path, f"cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise AppStartupError(path, f"must hold a JSON object, not {_json_type(data)}")
    return data


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _section(path: Path, data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The object at ``keys`` (empty when absent); ``AppStartupError`` when it is there but not an object."""
    node: Any = data
    for depth, key in enumerate(keys):
        node = node.get(key)
        if node is None:
            return {}
        if not isinstance(node, dict):
            name = ".".join(keys[: depth + 1])
            raise AppStartupError(path, f"{name} must be an object, not {_json_type(node)}")
    return dict(node)


def _positive_int(path: Path, section: dict[str, Any], name: str, key: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # the Functions host's configuration binder accepts a number in a string too
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AppStartupError(path, f"{name}.{key} must be a positive integer, not {json.dumps(value)}")
    return value


def _string(path: Path, section: dict[str, Any], name: str, key: str, default: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str):
        raise AppStartupError(path, f"{name}.{key} must be a string, not {json.dumps(value)}")
    return value


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$")


def parse_timespan(text: str) -> float:
    """Parse a .NET TimeSpan ``[d.]hh:mm:ss[.fff]`` into seconds."""
    m = _TIMESPAN.match(text.strip())
    if not m:
        raise ValueError(f"bad TimeSpan: {text!r}")
    days = int(m.group(1) or 0)
    return days * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))


def read_host_config(app_dir: Path) -> HostConfig:
    """Read host.json (missing file → defaults); ``AppStartupError`` names a malformed file or setting."""
    cfg = HostConfig()
    path = app_dir / "host.json"
    if not path.exists():
        return cfg
    data = read_json_object(path)
    dt = _section(path, data, "extensions", "durableTask")
    name = "extensions.durableTask"
    cfg.max_activities = _positive_int(path, dt, name, "maxConcurrentActivityFunctions", cfg.max_activities)
    cfg.max_orchestrators = _positive_int(path, dt, name, "maxConcurrentOrchestratorFunctions", cfg.max_orchestrators)
    cfg.hub_name = _string(path, dt, name, "hubName", cfg.hub_name)
    timeout = data.get("functionTimeout")
    if timeout is not None:
        try:
            secs = parse_timespan(timeout) if isinstance(timeout, str) else None
        except ValueError:
            secs = None
        if secs is None:
            problem = f'functionTimeout must be a TimeSpan string such as "00:10:00", not {json.dumps(timeout)}'
            raise AppStartupError(path, problem)
        cfg.function_timeout_s = None if secs <= 0 else secs
    http = _section(path, data, "extensions", "http")
    if "routePrefix" in http:
        cfg.route_prefix = _string(path, http, "extensions.http", "routePrefix", cfg.route_prefix).strip("/")
    return cfg


def load_local_settings(app_dir: Path) -> list[str]:
    """Copy local.settings.json ``Values`` into os.environ without overriding; return the names set."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return []
    values = _section(path, read_json_object(path), "Values")
    applied = []
    for key, value in values.items():
        if key not in os.environ:
            os.environ[key] = str(value)
            applied.append(key)
    return applied


def _find_register(module: Any, path: Path) -> Any:
    from azure.functions.decorators.function_app import FunctionRegister

    for value in vars(module).values():
        if isinstance(value, FunctionRegister):
            return value
    raise AppStartupError(path, "defines no FunctionApp / DFApp instance at module level")


def _own_frame(exc: BaseException, app_dir: Path) -> str | None:
    """``file:line`` of the innermost traceback frame in the app's own code (not in installed packages)."""
    if isinstance(exc, SyntaxError) and exc.filename and _is_app_file(Path(exc.filename), app_dir):
        return f"{exc.filename}:{exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if _is_app_file(Path(frame.filename), app_dir):
            return f"{frame.filename}:{frame.lineno}"
    return None


def _is_app_file(path: Path, app_dir: Path) -> bool:
    if not path.is_absolute() or "site-packages" in path.parts or "dist-packages" in path.parts:
        return False
    return path.is_relative_to(app_dir) and not path.is_relative_to(app_dir / ".venv")


def _describe(exc: BaseException, app_dir: Path) -> str:
    """``Type: message (at file:line)``, on one line."""
    text = " ".join(str(exc).split()) if not isinstance(exc, SyntaxError) else (exc.msg or "invalid syntax")
    where = _own_frame(exc, app_dir)
    return f"{type(exc).__name__}: {text}" + (f" (at {where})" if where else "")


def _app_step(path: Path, app_dir: Path, what: str, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except AppStartupError:
        raise
    except Exception as exc:
        raise AppStartupError(path, f"{what}: {_describe(exc, app_dir)}") from exc


def load_app(app_dir: Path, module_name: str = "function_app") -> Registry:
    """Import ``app_dir/function_app.py`` and index its functions; ``AppStartupError`` when that fails."""
    app_dir = app_dir.resolve()
    path = app_dir / f"{module_name}.py"
    if not app_dir.is_dir():
        raise AppStartupError(app_dir, "the app folder does not exist")
    if not path.is_file():
        raise AppStartupError(path, "not found: the app folder must hold the app's function_app.py")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AppStartupError(path, "cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loader = spec.loader
    _app_step(path, app_dir, "the app failed to import", lambda: loader.exec_module(module))
    app = _find_register(module, path)
    functions = _app_step(path, app_dir, "indexing the app's functions failed", app.get_functions)
    reg = Registry()
    for fn in functions:
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
