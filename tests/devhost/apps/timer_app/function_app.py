"""Test app for timer triggers: a yearly timer (from an app setting) that records every call and its past_due flag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="%YEARLY_SCHEDULE%", arg_name="timer")
def yearly(timer: func.TimerRequest) -> None:
    with Path(os.environ["DEVHOST_TEST_OUT"]).open("a") as f:
        f.write(json.dumps({"past_due": timer.past_due}) + "\n")
