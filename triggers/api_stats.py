"""Operator API (admin keys): statistics of the pipeline runs of a recent window (counts by status, failure
reasons, durations). The arithmetic lives in ``imagepipe.operators.stats``; this module does I/O and HTTP.
"""

from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

from imagepipe.operators.runs import RunFilter
from imagepipe.operators.stats import compute_stats
from triggers.http_common import handles_errors, json_response, query_int
from triggers.run_queries import fetch_summaries

bp = df.Blueprint()


@bp.function_name("get_stats")
@bp.route(route="stats", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@handles_errors
async def get_stats(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    window = query_int(req, "windowMinutes", 60, 1, 7 * 24 * 60)
    now = datetime.now(UTC)
    # runs created before the window may finish inside it: look back twice the window for those
    summaries = await fetch_summaries(client, RunFilter(created_from=now - timedelta(minutes=2 * window)))
    return json_response(compute_stats(summaries, now, window))
