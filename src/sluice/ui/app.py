"""The FastAPI application of `sluice ui`: pages, the JSON API, sign-in and actions.

Routes stay thin: reads go to sluice.ui.queries or the registry's functions, writes
to sluice.registry.promotion (the same calls as `sluice promote/approve/reject/
rollback`, so the same policy applies). The API takes a bearer token; HTML forms
use a session cookie (got by exchanging a token on /signin) plus a CSRF token, or
a trusted proxy's identity header. Errors become a page or a JSON body with a link
back, never a traceback.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from sluice.db import Database
from sluice.errors import PromotionRefused, SluiceError, UsageError
from sluice.pipeline.ledger import UNITS
from sluice.ui import queries, views
from sluice.ui.identities import SESSION_COOKIE, SESSION_S, Identities
from sluice.util.credentials import mask
from sluice.workspace.project import Project

_HERE = Path(__file__).parent


class PromoteBody(BaseModel):
    alias: str = "staging"
    version: int | None = None
    reason: str | None = None
    expect: int | None = None


class RollbackBody(BaseModel):
    alias: str = "production"
    reason: str | None = None


class SettleBody(BaseModel):
    reason: str | None = None


class Refused(SluiceError):
    """401 (no identity) or 403 (read-only, bad CSRF token)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def _status(error: SluiceError) -> int:
    if isinstance(error, Refused):
        return error.status
    if isinstance(error, queries.NotFound):
        return 404
    if isinstance(error, PromotionRefused):
        return 409 if str(error).startswith("conflict") else 403
    return 400 if isinstance(error, UsageError) else 500


def _page_args(limit: int, offset: int) -> tuple[int, int]:
    if limit < 1 or limit > queries.MAX_PAGE or offset < 0:
        raise UsageError(f"limit must be 1..{queries.MAX_PAGE} and offset ≥ 0",
                         hint="e.g. ?limit=50&offset=100")
    return limit, offset


def _same_site(request: Request) -> str:
    """The page the request came from, if it is one of ours ("/" otherwise): a link back."""
    from urllib.parse import urlsplit

    came = urlsplit(request.headers.get("referer", ""))
    if came.netloc != request.url.netloc or not came.path.startswith("/"):
        return "/"
    return came.path + (f"?{came.query}" if came.query else "")


def create_app(project: Project, db: Database, *, read_only: bool = False,
               identities: Identities | None = None) -> FastAPI:
    """The app over ``project``'s database and reports."""
    from sluice.util.identity import branch

    who = identities or Identities.load(project.state_dir)
    app = FastAPI(title="sluice", description="Runs, budgets, gate evidence and the model "
                  "registry of a sluice project.", docs_url=None, redoc_url=None)
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S",
                                                            time.localtime(t)) if t else "–"
    templates.env.filters["b64"] = lambda s: base64.b64encode(s.encode()).decode()
    templates.env.filters["num"] = lambda v, d=3: "–" if v is None else \
        f"{v:.{d}g}" if isinstance(v, int | float) else str(v)
    writes = who.configured and not read_only

    def viewer(request: Request) -> str | None:
        """Who is looking, from the session cookie or the trusted proxy's header."""
        if who.proxy_header and request.headers.get(who.proxy_header):
            return request.headers[who.proxy_header]
        return who.by_session(request.cookies.get(SESSION_COOKIE))

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        actor = viewer(request)
        return templates.TemplateResponse(request, name, {
            "actor": actor, "writes": writes, "read_only": read_only,
            "identities": who.configured, "csrf": who.csrf_for(actor) if actor else "",
            "done": request.query_params.get("done"), **context}, status_code=status)

    def api_actor(request: Request) -> str:
        if not writes:
            raise Refused(403, "this UI is read-only" if read_only else
                          "this UI is read-only: no identities are configured",
                          hint="start `sluice ui` without --read-only, with tokens from "
                               "`sluice ui token add NAME`")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        # Bearer tokens only: a proxy's identity header rides along on a browser's
        # cross-site requests too, and the API has no CSRF token (the forms do).
        name = who.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if name is None:
            raise Refused(401, "a valid bearer token is required for this action",
                          hint="send `Authorization: Bearer TOKEN` (`sluice ui token add NAME`)")
        return name

    async def form_actor(request: Request) -> tuple[str, dict[str, str]]:
        fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if not writes:
            raise Refused(403, "this UI is read-only")
        name = viewer(request)
        if name is None:
            raise Refused(401, "sign in to act", hint="/signin")
        if not who.csrf_ok(name, fields.get("csrf")):
            raise Refused(403, "the form's CSRF token is missing or wrong",
                          hint="reload the page and submit the form again")
        return name, fields

    @app.exception_handler(SluiceError)
    async def _error(request: Request, error: SluiceError) -> Response:
        status = _status(error)
        back = getattr(error, "back", None) or _same_site(request)
        message, hint = mask(error.message), mask(error.hint) if error.hint else None
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "hint": hint, "back": back},
                                status_code=status)
        return render(request, "error.html", status, message=message, hint=hint, back=back)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        message = "no such page" if error.status_code == 404 else str(error.detail)
        failure = Refused(error.status_code, message, hint="start from the overview")
        return await _error(request, failure)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in error.errors())
        return await _error(request, Refused(422, f"bad request: {problems}"))

    @app.exception_handler(Exception)
    async def _crash(request: Request, error: Exception) -> Response:
        message = f"internal error: {type(error).__name__}"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message, "back": "/"}, status_code=500)
        return render(request, "error.html", 500, message=message, hint=None, back="/")

    # -- reads: sluice.ui.views ------------------------------------------------------

    @app.get("/api/overview")
    def api_overview() -> dict[str, Any]:
        """Latest run per tier, pending requests, recent runs."""
        return views.overview(db)

    @app.get("/api/runs")
    def api_runs(limit: int = 50, offset: int = 0, tier: str | None = None) -> dict[str, Any]:
        """Runs, newest first (a page)."""
        return queries.runs_page(db, *_page_args(limit, offset), tier).to_json()

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> dict[str, Any]:
        """A run, its stage executions (the ledger) and its report."""
        return views.run(project, db, run_id)

    @app.get("/api/models")
    def api_models() -> list[dict[str, Any]]:
        """Every model: latest version, how many, its aliases."""
        from sluice.registry.versions import list_models

        return list_models(db)

    @app.get("/api/models/{name}")
    def api_model(name: str, limit: int = 50, offset: int = 0, history_limit: int = 50,
                  history_offset: int = 0) -> dict[str, Any]:
        """A model: aliases, versions and alias history (pages), pending requests."""
        return views.model(db, name, *_page_args(limit, offset),
                     *_page_args(history_limit, history_offset))

    @app.get("/api/models/{name}/compare")
    def api_compare(name: str, a: int, b: int) -> dict[str, Any]:
        """Metric deltas of version b against version a."""
        return views.compare(project, db, name, a, b)

    @app.get("/api/requests")
    def api_requests() -> list[dict[str, Any]]:
        """Pending promotion requests."""
        from sluice.registry.promotion import pending_requests

        return pending_requests(db)

    @app.get("/api/budgets")
    def api_budgets() -> dict[str, Any]:
        """Spend per period budget, tier, stage kind and day; estimate misses."""
        return views.budgets(project, db)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def page_docs(request: Request) -> Response:
        # FastAPI's own /docs loads Swagger UI from a CDN; this page works offline.
        spec = app.openapi()
        routes = [(method.upper(), path, op.get("description") or op.get("summary", ""),
                   [p["name"] for p in op.get("parameters", [])])
                  for path, item in spec["paths"].items() for method, op in item.items()
                  if path.startswith("/api/")]
        return render(request, "docs.html", routes=routes)

    @app.get("/", response_class=HTMLResponse)
    def page_overview(request: Request) -> Response:
        from sluice.report.budget import period_rows
        from sluice.ui.charts import burn_down, usage_bars

        now, charts = time.time(), []
        for period in period_rows(project, db, now):
            title = f"budget {period.name}: use"
            charts.append((title, usage_bars(title, [
                (unit, used, f"{used:.0%}") for unit in UNITS
                if (used := period.fraction_used(unit)) is not None])))
            unit = next((u for u in ("usd", "wall") if period.limits.get(u)), None)
            if unit is not None:  # CPU- and GPU-hour limits: the bars above show them
                days = max(1, round(period.window_s / 86400))
                spent = queries.cumulative_spend(db, now - period.window_s, days,
                                                 period.tiers, unit, now)
                title = f"budget {period.name}: {unit} burn-down"
                charts.append((title, burn_down(title, spent, float(period.limits[unit] or 0),
                                                "USD" if unit == "usd" else "s")))
        return render(request, "overview.html", data=views.overview(db), charts=charts)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def page_run(request: Request, run_id: str) -> Response:
        from sluice.report.run import markdown_html

        data = views.run(project, db, run_id)
        report = data["report"]
        body = markdown_html(report) if report else None
        plots = [name for files in (report or {}).get("plots", {}).values() for name in files]
        logs = queries.stage_logs(db, project.log_path, data)
        return render(request, "run.html", run=data, body=body, plots=plots, logs=logs)

    @app.get("/runs/{run_id}/plots/{name}")
    def plot(run_id: str, name: str) -> Response:
        from sluice.report.run import load_report

        report, folder = load_report(project, run_id)
        names = {n for files in report.get("plots", {}).values() for n in files}
        if name not in names or not (folder / name).is_file():
            raise queries.NotFound(f"run `{run_id}` has no plot `{name[:80]}`",
                                   back=f"/runs/{quote(run_id)}")
        return FileResponse(folder / name)

    @app.get("/models", response_class=HTMLResponse)
    def page_models(request: Request) -> Response:
        from sluice.registry.versions import list_models

        return render(request, "models.html", models=list_models(db))

    @app.get("/models/{name}", response_class=HTMLResponse)
    def page_model(request: Request, name: str, limit: int = 50, offset: int = 0,
                   history_offset: int = 0, a: int | None = None,
                   b: int | None = None) -> Response:
        data = views.model(db, name, *_page_args(limit, offset), 50, max(history_offset, 0))
        compared = (views.compare(project, db, name, a, b)
                    if a is not None and b is not None else None)
        return render(request, "model.html", model=data, compared=compared)

    @app.get("/budgets", response_class=HTMLResponse)
    def page_budgets(request: Request) -> Response:
        from sluice.ui.charts import stacked_days

        spend = views.budgets(project, db)
        chart = stacked_days("spend per day and tier, last 30 days", spend["daily"],
                             "USD (wall-hours without prices)")
        return render(request, "budgets.html", spend=spend, chart=chart)

    # -- identities --------------------------------------------------------------------

    @app.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request) -> Response:
        return render(request, "signin.html", error=None)

    @app.post("/signin", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        name = who.by_token(fields.get("token", "").strip())
        if name is None:
            return render(request, "signin.html", 401, error="unknown token")
        target = fields.get("next", "/")
        response = RedirectResponse(target if target.startswith("/") and
                                    not target.startswith("//") else "/", status_code=303)
        response.set_cookie(SESSION_COOKIE, who.session_for(name), max_age=SESSION_S,
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @app.post("/signout")
    def signout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # -- writes: the registry's own functions ------------------------------------------

    def do_promote(name: str, actor: str, body: PromoteBody) -> dict[str, Any]:
        from sluice.registry.promotion import _UNSET, promote

        queries.model_summary(db, name)
        return promote(db, project.config.spec.promotion, name, body.version, body.alias,
                       actor, body.reason, branch(project.root),
                       _UNSET if body.expect is None else body.expect,
                       new_alias=False).to_json()

    def do_rollback(name: str, actor: str, body: RollbackBody) -> dict[str, Any]:
        from sluice.registry.promotion import rollback

        queries.model_summary(db, name)
        return rollback(db, project.config.spec.promotion, name, body.alias, actor,
                        body.reason).to_json()

    def do_settle(request_id: int, verb: str, actor: str, reason: str | None
                  ) -> dict[str, Any]:
        from sluice.registry.promotion import approve, reject

        queries.request_exists(db, request_id)
        if verb == "approve":
            return approve(db, project.config.spec.promotion, request_id, actor,
                           branch(project.root)).to_json()
        if verb == "reject":
            return reject(db, request_id, actor, reason).to_json()
        raise queries.NotFound(f"no action `{verb[:40]}` on requests", back="/")

    @app.post("/api/models/{name}/promote")
    def api_promote(name: str, body: PromoteBody,
                    actor: str = Depends(api_actor)) -> dict[str, Any]:
        """Move an alias to a version under its policy, or open an approval request."""
        return do_promote(name, actor, body)

    @app.post("/api/models/{name}/rollback")
    def api_rollback(name: str, body: RollbackBody,
                     actor: str = Depends(api_actor)) -> dict[str, Any]:
        """Move an alias back to the version that held it before."""
        return do_rollback(name, actor, body)

    @app.post("/api/requests/{request_id}/{verb}")
    def api_settle(request_id: int, verb: str, body: SettleBody | None = None,
                   actor: str = Depends(api_actor)) -> dict[str, Any]:
        """Approve or reject a pending promotion request."""
        return do_settle(request_id, verb, actor, body.reason if body else None)

    def done(target: str, outcome: dict[str, Any]) -> Response:
        return RedirectResponse(f"{target}?done={quote(outcome['message'])}", status_code=303)

    @app.post("/models/{name}/promote")
    async def form_promote(request: Request, name: str) -> Response:
        actor, fields = await form_actor(request)
        version = fields.get("version", "").strip()
        body = PromoteBody(alias=fields.get("alias", "staging").strip() or "staging",
                           version=int(version) if version.isdigit() else None,
                           reason=fields.get("reason") or None)
        return done(f"/models/{quote(name)}",
                    await run_in_threadpool(do_promote, name, actor, body))

    @app.post("/models/{name}/rollback")
    async def form_rollback(request: Request, name: str) -> Response:
        actor, fields = await form_actor(request)
        body = RollbackBody(alias=fields.get("alias", "production"),
                            reason=fields.get("reason") or None)
        return done(f"/models/{quote(name)}",
                    await run_in_threadpool(do_rollback, name, actor, body))

    @app.post("/requests/{request_id}/{verb}")
    async def form_settle(request: Request, request_id: int, verb: str) -> Response:
        actor, fields = await form_actor(request)
        outcome = await run_in_threadpool(do_settle, request_id, verb, actor,
                                          fields.get("reason") or None)
        return done(f"/models/{quote(outcome['model'])}", outcome)

    app.mount("/static", _static(), name="static")
    return app


def _static() -> Any:
    from fastapi.staticfiles import StaticFiles

    return StaticFiles(directory=str(_HERE / "static"))
