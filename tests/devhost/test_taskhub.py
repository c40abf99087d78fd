"""The SQLite task hub: history is appended row by row, and a hub of an older devhost is refused in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devhost import decisions
from devhost.decisions import Message, OrchestratorResult
from devhost.protocol import EventType, event
from devhost.store import Store
from devhost.taskhub import HubFormatError, TaskHub
from tests.devhost.harness import APPS, Devhost

NOW = 1_800_000_000.0


def _old_hub(path: Path) -> None:
    """A task hub as the first devhost wrote it: one JSON state blob per instance."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(path)) as conn:
        conn.execute("CREATE TABLE instances(instance_id TEXT PRIMARY KEY, name TEXT, state TEXT NOT NULL)")


@pytest.mark.unit
def test_history_rows_are_appended_never_rewritten(tmp_path: Path) -> None:
    hub = TaskHub(Store(tmp_path / "hub.sqlite3"))
    with hub.store.tx() as conn:
        hub.create_instance(conn, "i1", "orch", None, NOW, "e1")
    for step in range(3):
        row = hub.get("i1")
        assert row is not None
        inst = hub.state_of(row)
        msgs = hub.visible_messages("i1", NOW + 10, 10)
        t, opening = decisions.begin(inst, [m.event for m in msgs], NOW + step)
        d = decisions.decide(inst, hub.open_tasks("i1"), opening, OrchestratorResult(), t, lambda: "x")
        before = hub.history_texts("i1")
        assert hub.commit_episode(inst, int(row["history_len"]), [m.msg_id for m in msgs], d) is not None
        after = hub.history_texts("i1")
        assert after[: len(before)] == before and len(after) == len(before) + len(d.history)
    kinds = [e["EventType"] for e in hub.history("i1")]
    assert kinds[:3] == [EventType.ORCHESTRATOR_STARTED, EventType.EXECUTION_STARTED, EventType.ORCHESTRATOR_COMPLETED]
    assert all(e["IsPlayed"] for e in hub.history("i1"))
    assert hub.history_texts("i1", 3) == hub.history_texts("i1")[3:]


@pytest.mark.unit
def test_a_suspended_instance_keeps_its_messages_and_is_never_picked_until_resumed(tmp_path: Path) -> None:
    hub = TaskHub(Store(tmp_path / "hub.sqlite3"))
    with hub.store.tx() as conn:
        hub.create_instance(conn, "i1", "orch", None, NOW, "e1")
        hub.create_instance(conn, "i2", "orch", None, NOW, "e2")
    assert hub.ready_instances(NOW + 1)[0] == ["i1", "i2"]
    hub.set_suspended("i1", True, NOW + 1)
    raised = event(EventType.EVENT_RAISED, NOW + 2, Name="Go", Input="1")
    with hub.store.tx() as conn:
        hub.enqueue(conn, Message("i1", "e1", NOW + 2, raised))
    assert hub.ready_instances(NOW + 10)[0] == ["i2"]  # the engine's only way to pick work: i1 is not offered
    assert [m.event["EventType"] for m in hub.visible_messages("i1", NOW + 10, 10)] == [
        EventType.EXECUTION_STARTED,
        EventType.EVENT_RAISED,
    ]
    hub.set_suspended("i1", False, NOW + 3)
    assert hub.ready_instances(NOW + 10)[0] == ["i1", "i2"]


@pytest.mark.unit
def test_old_format_hub_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state" / "taskhub.sqlite3"
    _old_hub(path)
    with pytest.raises(HubFormatError) as info:
        TaskHub(Store(path))
    message = str(info.value)
    assert str(path) in message and "delete the state folder" in message and "\n" not in message


@pytest.mark.devhost
def test_devhost_on_an_old_hub_exits_naming_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _old_hub(state / "taskhub.sqlite3")
    host = Devhost(APPS / "noop_app", state)
    with pytest.raises(RuntimeError, match="devhost exited with code 2"):
        host.start(timeout=60)
    log = host.log.read_text()
    assert "Traceback" not in log
    assert f"{state / 'taskhub.sqlite3'} holds a task hub of another devhost version" in log


class _CountingStore(Store):
    """A store that counts its transactions."""

    transactions = 0

    def tx(self):  # type: ignore[no-untyped-def]
        self.transactions += 1
        return super().tx()


@pytest.mark.unit
def test_a_batch_of_answers_is_recorded_in_one_transaction_each_once(tmp_path: Path) -> None:
    from devhost.protocol import event
    from devhost.taskhub import ActivityWork

    store = _CountingStore(tmp_path / "hub.sqlite3")
    hub = TaskHub(store)
    items: list[ActivityWork] = []
    with store.tx() as conn:
        hub.create_instance(conn, "live", "orch", None, NOW, "e1")
        hub.create_instance(conn, "ended", "orch", None, NOW, "e2")
        conn.execute("UPDATE instances SET status='Terminated' WHERE instance_id='ended'")
        for iid, exec_id, task in (("live", "e1", 0), ("live", "e1", 1), ("live", "e1", 2), ("ended", "e2", 0)):
            cur = conn.execute(
                "INSERT INTO work_items(instance_id, execution_id, task_id, name, input) VALUES(?,?,?,?,?)",
                (iid, exec_id, task, "noop", "1"),
            )
            items.append(ActivityWork(int(cur.lastrowid or 0), iid, exec_id, task, "noop", "1"))
    store.transactions = 0

    def done(item: ActivityWork) -> tuple[ActivityWork, dict[str, object]]:
        return item, event(EventType.TASK_COMPLETED, NOW, TaskScheduledId=item.task_id, Result="1")

    # items 0 and 1 of the live run (item 0 twice: a duplicate answer), and the ended run's item
    hub.complete_activities([done(items[0]), done(items[1]), done(items[0]), done(items[3])], NOW + 1)

    assert store.transactions == 1
    answers = [
        m.event for m in hub.visible_messages("live", NOW + 2, 100) if m.event.get("TaskScheduledId") is not None
    ]
    assert sorted(a["TaskScheduledId"] for a in answers) == [0, 1]  # the duplicate is not enqueued again
    assert [m.event["EventType"] for m in hub.visible_messages("ended", NOW + 2, 100)] == [
        EventType.EXECUTION_STARTED
    ]  # an ended execution gets no answer
    left = [w.task_id for w in hub.work_after(0, 100)]
    assert left == [2]  # only the unanswered item remains to run
