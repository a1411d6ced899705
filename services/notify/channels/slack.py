"""Slack delivery: a Block Kit message POSTed to the focal point's incoming webhook."""

from __future__ import annotations

import httpx

from schemas.alerts import AlertRaised
from services.notify.render import Outgoing, render_slack
from services.notify.routing import FocalPoint


class SlackChannel:
    name = "slack"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    def applies(self, focal_point: FocalPoint) -> bool:
        return focal_point.slack_webhook is not None

    async def send(self, alert: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None:
        assert focal_point.slack_webhook is not None
        response = await self.client.post(focal_point.slack_webhook, json=render_slack(alert, out))
        response.raise_for_status()
