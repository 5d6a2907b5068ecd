"""The chaos tab on Locust's web UI (Flask), in the game day's master.

Two pieces on Locust's own Flask app (``environment.web_ui.app``):

* ``/chaos``: the chaos page, with the buttons (inject any catalogue fault now, optionally for a
  while; revert one or all), the timeline as it plays, the phase, and the live SLOs and guards.
  Its JSON API (``/chaos/api/state``, ``/inject``, ``/revert``) is what the page and
  ``harness inject/revert/status`` call. Every call needs the game day's token (header
  ``X-Harness-Token``; the page gets it from its URL, which ``harness gameday`` prints).
* A "Chaos" tab among Locust's own tabs (Locust's ``extended_tabs``): the same timeline and
  checks as a live table. Locust's extension tabs render tables only, so the buttons live on the
  chaos page; the tab's first row says where.

Imported only in the master (Flask under gevent, as Locust runs it).
"""

from __future__ import annotations

import hmac
import json
from importlib import resources
from typing import Any

from flask import Blueprint, Response, request

from harness.gameday.control import TOKEN_HEADER
from harness.gameday.desk import Answer, ChaosDesk

__all__ = ["install_chaos_ui", "tab_rows"]

TAB_KEY = "chaos"


def install_chaos_ui(web_ui: Any, desk: ChaosDesk, token: str) -> None:
    """Add the chaos page, its API and the Locust tab to a (not yet started) Locust WebUI."""
    app = web_ui.app
    page = resources.files("harness.gameday").joinpath("chaos.html").read_text(encoding="utf-8")
    blueprint = Blueprint("harness_chaos", __name__)

    def authorised() -> bool:
        given = request.headers.get(TOKEN_HEADER) or request.args.get("token") or ""
        return hmac.compare_digest(given.encode(), token.encode())

    def answer(result: Answer) -> Response:
        return Response(json.dumps(result.body), status=result.status, mimetype="application/json")

    def refused() -> Response:
        return answer(Answer(401, {"error": "missing or wrong game-day token"}))

    @blueprint.route("/chaos")
    def chaos_page() -> Response:
        if not authorised():
            return Response(
                "The chaos page needs the game day's token: open the URL `harness gameday` "
                "printed (it ends in ?token=...).\n",
                status=401,
                mimetype="text/plain",
            )
        return Response(page, mimetype="text/html")

    @blueprint.route("/chaos/api/state")
    def chaos_state() -> Response:
        if not authorised():
            return refused()
        return answer(Answer(200, desk.state()))

    @blueprint.route("/chaos/api/inject", methods=["POST"])
    def chaos_inject() -> Response:
        if not authorised():
            return refused()
        return answer(desk.inject(_body_with_who()))

    @blueprint.route("/chaos/api/revert", methods=["POST"])
    def chaos_revert() -> Response:
        if not authorised():
            return refused()
        return answer(desk.revert(_body_with_who()))

    app.register_blueprint(blueprint)

    # Locust's own tab: its React UI reads these from the template args and fills the table
    # from "extended_stats" in each /stats/requests answer.
    web_ui.template_args["extended_tabs"] = [{"title": "Chaos", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": TAB_KEY,
            "structure": [
                {"key": "what", "title": "What"},
                {"key": "state", "title": "State"},
                {"key": "detail", "title": "Detail"},
            ],
        }
    ]

    def extend_stats(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        try:
            data = json.loads(response.get_data())
            data["extended_stats"] = [{"key": TAB_KEY, "data": tab_rows(desk.state())}]
            response.set_data(json.dumps(data))
        except Exception:  # noqa: S110  # Locust's own stats must get through whatever we fail at
            pass
        return response

    app.after_request(extend_stats)


def _body_with_who() -> dict[str, Any]:
    body = request.get_json(silent=True)
    body = dict(body) if isinstance(body, dict) else {}
    if not (isinstance(body.get("who"), str) and body["who"].strip()):
        body["who"] = f"web UI ({request.remote_addr})"
    return body


def tab_rows(state: dict[str, Any]) -> list[dict[str, str]]:
    """The chaos state as the rows of Locust's tab: the phase, each fault, each check."""
    elapsed = state.get("elapsed_s")
    rows = [
        {
            "what": "phase",
            "state": str(state.get("phase") or "not running"),
            "detail": (
                f"{elapsed:.0f}s of {state['total_s']:.0f}s; inject and revert on the chaos "
                "page (/chaos, the URL `harness gameday` printed)"
                if isinstance(elapsed, int | float)
                else "the load has not started"
            ),
        }
    ]
    for fault in state.get("timeline", []):
        by = f" by {fault['who']}" if fault.get("manual") else ""
        when = f"at {fault['start']:.0f}s" + (
            f" for {fault['end'] - fault['start']:.0f}s" if fault.get("end") is not None else ""
        )
        rows.append(
            {
                "what": f"fault {fault['name']}",
                "state": fault["state"] + (" (manual)" if fault.get("manual") else ""),
                "detail": f"{fault['description']}; {when}{by}"
                + (f"; error: {fault['error']}" if fault.get("error") else ""),
            }
        )
    for kind, key in (("SLO", "slos"), ("guard", "guards")):
        for check in state.get(key, []):
            observed = f"{check['observed']}; " if check.get("observed") else ""
            rows.append(
                {
                    "what": f"{kind} {check['name']}",
                    "state": check["state"],
                    "detail": f"{observed}{check['detail']}",
                }
            )
    return rows
