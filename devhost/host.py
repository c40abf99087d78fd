"""Host composition: load the app, open the state, run the engine, HTTP server, timers and Event Grid.

``Host.run()`` runs in the foreground until SIGINT/SIGTERM. Timer triggers are scheduled on the
event loop (``run_on_startup``; ``past_due`` when an occurrence was missed while the host was down,
using the last run time kept in SQLite).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from devhost import ncrontab
from devhost.app_loader import FunctionInfo, load_app, load_local_settings, read_host_config
from devhost.engine import Engine
from devhost.invoke import build_kwargs, call_async, log_execution, new_invocation_id
from devhost.routes import Keys
from devhost.store import Store


def _resolve_setting(text: str) -> str:
    """Replace ``%NAME%`` app-setting references with environment values."""
    return re.sub(r"%([^%]+)%", lambda m: os.environ.get(m.group(1), m.group(0)), text)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it owner-only (0700): it holds keys, inputs and blobs."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)


def restrict_own_logs() -> None:
    """When stdout/stderr are redirected to files we own (the devhost log), make them owner-only (0600)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            st = os.fstat(fd)
        except (OSError, ValueError, AttributeError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)


class Host:
    """One running devhost."""

    def __init__(
        self,
        app_dir: Path,
        port: int,
        state_dir: Path,
        storage: str = "azurite",
        no_auth: bool = False,
        bind: str = "127.0.0.1",
    ) -> None:
        self.app_dir = app_dir.resolve()
        self.app_dir_s = str(self.app_dir)
        self.port = port
        self.bind = bind
        self.state_dir = state_dir.resolve()
        make_private_dir(self.state_dir)
        restrict_own_logs()
        self.storage = storage
        self.no_auth = no_auth
        self.running = False
        self.public_origin = f"http://{'127.0.0.1' if bind in ('0.0.0.0', '::') else bind}:{port}"
        self.rpc_origin = f"http://127.0.0.1:{port}"
        load_local_settings(self.app_dir)
        # the app's own host name, as the Functions host (and Core Tools) set it: apps build absolute links from it
        os.environ.setdefault("WEBSITE_HOSTNAME", self.public_origin.removeprefix("http://"))
        self.config = read_host_config(self.app_dir)
        from devhost.eventgrid import converter_mode

        self.eventgrid_converter = converter_mode()  # fails fast on a bad setting
        self.registry = load_app(self.app_dir)  # before Azurite: an app that cannot load fails fast
        self.azurite: Any = None
        if storage == "azurite":
            from devhost import azurite

            blob_port = int(os.environ.get("AZURITE_BLOB_PORT", "10000"))
            self.azurite = azurite.ensure(blob_port, self.state_dir / "azurite", self.app_dir, self.state_dir)
        try:
            self.store = Store(self.state_dir / "taskhub.sqlite3")
            self.keys = Keys(self.state_dir)
            self.engine = Engine(self.store, self.registry, self.config, self.app_dir)
            self.eventgrid: Any = None
            self.loop: asyncio.AbstractEventLoop | None = None
            from devhost.server import Server

            self.server = Server(self)
        except BaseException:
            if self.azurite is not None:
                self.azurite.stop(wait=False)  # our own open connections would hold its graceful close
            raise

    # ------------------------------------------------------------------ invocations

    def client_binding(self) -> str:
        """Client binding JSON for non-HTTP invocations."""
        return self.server.binding(None)

    async def invoke_eventgrid(self, info: FunctionInfo, event: dict[str, Any]) -> str | None:
        """Invoke an Event Grid function with one event; return the error text or None."""
        from devhost.eventgrid import decode_event

        value = decode_event(event, self.eventgrid_converter)
        inv = new_invocation_id()
        kwargs = build_kwargs(
            info, value, inv, self.app_dir_s, self.client_binding() if info.client_binding_name else None
        )
        started = time.monotonic()
        try:
            await call_async(info, kwargs, self.config.function_timeout_s)
        except Exception as exc:  # noqa: BLE001 - reported to the delivery loop
            log_execution(info.name, inv, started, exc, eventId=event.get("id"))
            return f"{type(exc).__name__}: {exc}"
        log_execution(info.name, inv, started, None, eventId=event.get("id"))
        return None

    async def invoke_timer(self, info: FunctionInfo, past_due: bool, last: float | None, nxt: float | None) -> None:
        """Invoke a timer function."""
        from azure.functions.timer import TimerRequest

        def fmt(ts: float | None) -> str:
            return "0001-01-01T00:00:00" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()

        req = TimerRequest(
            past_due=past_due,
            schedule_status={"Last": fmt(last), "Next": fmt(nxt), "LastUpdated": fmt(time.time())},
            schedule={"AdjustForDST": True},
        )
        inv = new_invocation_id()
        kwargs = build_kwargs(
            info, req, inv, self.app_dir_s, self.client_binding() if info.client_binding_name else None
        )
        started = time.monotonic()
        try:
            await call_async(info, kwargs, self.config.function_timeout_s)
            log_execution(info.name, inv, started, None, pastDue=past_due)
        except Exception as exc:  # noqa: BLE001
            log_execution(info.name, inv, started, exc, pastDue=past_due)

    async def run_function_manually(self, name: str, body: bytes) -> bool:
        """``POST /admin/functions/<name>``: run a timer (or Event Grid) function now."""
        info = self.registry.functions.get(name)
        if info is None:
            return False
        if info.trigger_type == "timerTrigger":
            await self.invoke_timer(info, False, None, None)
            return True
        if info.trigger_type == "eventGridTrigger":
            payload = json.loads(body or b"{}").get("input") or "{}"
            await self.invoke_eventgrid(info, json.loads(payload) if isinstance(payload, str) else payload)
            return True
        return False

    async def _timer_loop(self, info: FunctionInfo) -> None:
        schedule_text = _resolve_setting(str(getattr(info.trigger, "schedule", "")))
        try:
            sched = ncrontab.parse(schedule_text)
        except ValueError as exc:
            sys.stderr.write(f"devhost: timer {info.name} disabled: bad schedule {schedule_text!r}: {exc}\n")
            return
        key = f"timer:{info.name}:last"
        last_s = self.store.get_kv(key)
        last = float(last_s) if last_s else None
        if getattr(info.trigger, "run_on_startup", False):
            await self.invoke_timer(info, False, last, None)
        elif last is not None:
            missed = sched.next_after(datetime.fromtimestamp(last, UTC))
            if missed.timestamp() < time.time() - 1:
                await self.invoke_timer(info, True, last, None)
                last = time.time()
                self.store.set_kv(key, str(last))
        while True:
            nxt = sched.next_after(datetime.now(UTC)).timestamp()
            await asyncio.sleep(max(0.0, nxt - time.time()))
            await self.invoke_timer(info, False, last, sched.next_after(datetime.fromtimestamp(nxt, UTC)).timestamp())
            last = nxt
            self.store.set_kv(key, str(last))

    # ------------------------------------------------------------------ run

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.loop = asyncio.get_running_loop()
        runner = web.AppRunner(self.server.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.bind, self.port)
        await site.start()
        self.engine.start()
        tasks = [asyncio.create_task(self._timer_loop(t)) for t in self.registry.timers]
        if self.registry.eventgrid:
            from devhost.eventgrid import EventGridEmulator

            self.eventgrid = EventGridEmulator(self)
            tasks.append(asyncio.create_task(self.eventgrid.run()))
        self.running = True
        self._banner()
        try:
            await stop.wait()
        finally:
            self.running = False
            for t in tasks:
                t.cancel()
            self.engine.stop()
            await runner.cleanup()
            if self.azurite is not None:
                self.azurite.stop(wait=False)  # our own open connections would hold its graceful close

    def _banner(self) -> None:
        out = sys.stdout
        out.write(f"devhost: listening on {self.public_origin} (app {self.app_dir_s}, state {self.state_dir})\n")
        prefix = self.config.route_prefix
        for info in self.registry.http:
            route = getattr(info.trigger, "route", None) or info.name
            out.write(f"  {info.name}: {self.public_origin}/{prefix}/{route}\n")
        for kind, names in (
            ("orchestrators", self.registry.orchestrators),
            ("activities", self.registry.activities),
            ("eventgrid", self.registry.eventgrid),
        ):
            if names:
                out.write(f"  {kind}: {', '.join(sorted(names))}\n")
        if self.registry.timers:
            out.write(f"  timers: {', '.join(t.name for t in self.registry.timers)}\n")
        if self.no_auth:
            out.write("  auth: disabled (--no-auth)\n")
        elif out.isatty():
            # Keys go to an interactive terminal only, never into a log file.
            out.write(
                f"  master key: {self.keys.master}\n  function key (default): {self.keys.function['default']}\n"
                f"  keys file (owner-only): {self.state_dir / 'keys.json'}\n"
            )
        else:
            out.write(f"  keys: in {self.state_dir / 'keys.json'} (owner-only; not printed to logs)\n")
        out.write("devhost: Running\n")
        out.flush()

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await self.serve(stop)

        try:
            asyncio.run(main())
        finally:
            if self.azurite is not None:
                self.azurite.stop(wait=False)  # our own open connections would hold its graceful close
