"""Notify's HTTP API on :8002: acknowledge links for focal points, and the operations API
(open alerts, one alert's delivery history, acknowledge, silences) behind the operator token.

Acknowledge links are GET-safe: opening one shows a confirmation form, and only its POST
acknowledges, so mail scanners that prefetch links cannot acknowledge an alert.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from schemas.alerts import AlertRaised
from services.notify import acks
from services.notify.ledger import Ledger
from services.notify.scheduler import Scheduler
from services.notify.silences import Silence, SilenceIn, Silences

_bearer = HTTPBearer(auto_error=False)


class AckIn(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="Who acknowledges.")


class Acknowledged(BaseModel):
    fingerprint: str
    acknowledged_groups: int


class OpenAlert(BaseModel):
    fingerprint: str
    version: int
    severity: int
    country: str
    indicator: str
    updated_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class AlertHistory(BaseModel):
    alert: AlertRaised
    groups: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]


def _at(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def build_api(
    scheduler: Scheduler, ledger: Ledger, silences: Silences, *, operator_token: str, secret: bytes
) -> APIRouter:
    api = APIRouter()

    def operator(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode(), operator_token.encode()
        ):
            raise HTTPException(
                401, "missing or wrong operator token", {"WWW-Authenticate": "Bearer"}
            )

    ops = APIRouter(prefix="/v1", dependencies=[Depends(operator)], tags=["operations"])

    @ops.get("/alerts")
    async def open_alerts() -> list[OpenAlert]:
        out = []
        for a in await scheduler.alerts.latest(open_only=True):
            groups = await scheduler.groups_of(a.fingerprint)
            acked = next((g for g in groups if g["acked_at"] is not None), None)
            out.append(
                OpenAlert(
                    fingerprint=a.fingerprint,
                    version=a.version,
                    severity=a.severity,
                    country=a.country,
                    indicator=a.indicator,
                    updated_at=a.updated_at,
                    acknowledged_by=acked["acked_by"] if acked else None,
                    acknowledged_at=_at(acked["acked_at"]) if acked else None,
                )
            )
        return out

    @ops.get("/alerts/{fingerprint}")
    async def one_alert(fingerprint: str) -> AlertHistory:
        found = await scheduler.alerts.latest(open_only=False, fingerprint=fingerprint)
        if not found:
            raise HTTPException(404, f"no alert with fingerprint {fingerprint!r}")
        times = ("notify_at", "last_notified_at", "escalate_at", "escalated_at", "acked_at")
        groups = [
            {k: (_at(v) if k in times else v) for k, v in g.items()}
            for g in await scheduler.groups_of(fingerprint)
        ]
        stamps = ("due_at", "lease_until", "created_at", "updated_at", "sent_at")
        deliveries = [
            {k: (_at(v) if k in stamps else v) for k, v in d.items()}
            for d in await ledger.history(fingerprint)
        ]
        return AlertHistory(alert=found[0], groups=groups, deliveries=deliveries)

    @ops.post("/alerts/{fingerprint}/ack")
    async def acknowledge(fingerprint: str, body: AckIn) -> Acknowledged:
        if not await scheduler.groups_of(fingerprint):
            raise HTTPException(404, f"no alert with fingerprint {fingerprint!r}")
        n = await scheduler.acknowledge(fingerprint, f"operator:{body.by}")
        return Acknowledged(fingerprint=fingerprint, acknowledged_groups=n)

    @ops.get("/silences")
    async def list_silences() -> list[Silence]:
        return await silences.active(scheduler.clock())

    @ops.post("/silences", status_code=201)
    async def create_silence(body: SilenceIn) -> Silence:
        try:
            return await silences.create(body, scheduler.clock())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc

    @ops.delete("/silences/{silence_id}", status_code=204)
    async def expire_silence(silence_id: str) -> Response:
        if not await silences.expire(silence_id, scheduler.clock()):
            raise HTTPException(404, f"no active silence {silence_id!r}")
        scheduler.wake()
        return Response(status_code=204)

    api.include_router(ops)

    @api.get("/v1/ack", response_class=HTMLResponse, include_in_schema=False)
    async def ack_form(f: str, p: str, e: int, s: str) -> HTMLResponse:
        _check(secret, f, p, e, s, scheduler.clock())
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{escape(str(v))}">'
            for k, v in (("f", f), ("p", p), ("e", e), ("s", s))
        )
        return _page(
            f"Acknowledge alert {escape(f)}?",
            f'<form method="post" action="/v1/ack">{hidden}'
            '<label>Your name <input name="name" maxlength="100"></label> '
            '<button type="submit">Acknowledge</button></form>'
            "<p>This stops reminders and escalation for this alert.</p>",
        )

    @api.post("/v1/ack", response_class=HTMLResponse, include_in_schema=False)
    async def ack_submit(request: Request) -> HTMLResponse:
        form = parse_qs((await request.body()).decode(errors="replace"), max_num_fields=10)
        field = {k: v[0] for k, v in form.items() if v}
        try:
            f, p, e, s = field["f"], field["p"], int(field["e"]), field["s"]
        except (KeyError, ValueError) as exc:
            raise HTTPException(422, "the form needs f, p, e (an integer) and s") from exc
        _check(secret, f, p, e, s, scheduler.clock())
        name = " ".join(field.get("name", "").split())[:100]
        who = f"{p} ({name})" if name else p
        n = await scheduler.acknowledge(f, who)
        message = "Acknowledged. Thank you." if n else "Already acknowledged."
        return _page(escape(message), f"<p>Alert {escape(f)}, by {escape(who)}.</p>")

    return api


def _check(secret: bytes, f: str, p: str, e: int, s: str, now: float) -> None:
    try:
        acks.verify(secret, f, p, e, s, now)
    except acks.AckLinkError as exc:
        raise HTTPException(403, str(exc)) from exc


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><title>{title}</title></head>"
        f'<body style="font-family: sans-serif"><h2>{title}</h2>{body}</body></html>'
    )
