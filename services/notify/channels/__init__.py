"""Delivery channels. Each one sends one notification to one focal point, or raises."""

from __future__ import annotations

from typing import Protocol

from schemas.alerts import AlertRaised
from services.notify.render import Outgoing
from services.notify.routing import FocalPoint


class Channel(Protocol):
    name: str

    def applies(self, focal_point: FocalPoint) -> bool: ...

    async def send(self, alert: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None: ...
