"""``manage.py endpoints add MODEL URL [--weight N] [--token T] | list | drain ID | remove ID``."""

from __future__ import annotations

import asyncio
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from deploy import selectors, services, vllm_client
from deploy.health import EndpointHealth, health_read, poll_and_store
from deploy.models import Endpoint
from deploy.selectors import EndpointRoute


async def _poll_now(endpoints: list[Endpoint]) -> list[EndpointHealth]:
    routes = [EndpointRoute(id=e.id, base_url=e.base_url, token=e.token) for e in endpoints]
    try:
        return await poll_and_store(routes)
    finally:
        await vllm_client.close_session()


class Command(BaseCommand):
    help = "Register, list, drain and remove the engine endpoints that serve models."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Register URL as serving MODEL.")
        add.add_argument("model", help="The model's public name.")
        add.add_argument("url", help="Base URL of the engine, e.g. http://gpu1:8000")
        add.add_argument("--weight", type=int, default=1, help="Relative share of traffic.")
        add.add_argument("--token", default="", help="Bearer token the engine expects.")
        add.add_argument(
            "--health-path",
            default="/health",
            help="Path that answers 200 when the engine is ready (llama.cpp: /openapi.json).",
        )
        actions.add_parser("list", help="Every endpoint with its state and live load.")
        for name, text in (("drain", "Stop new calls to"), ("remove", "Forget")):
            action = actions.add_parser(name, help=f"{text} an endpoint.")
            action.add_argument("id", type=int, help="The endpoint's id (see 'list').")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "_" + options["action"])(options)

    def _add(self, options: dict[str, Any]) -> None:
        model = selectors.model_get(name=options["model"])
        if model is None:
            raise CommandError(
                f"No model named {options['model']!r}. Create it first: "
                f"manage.py models add {options['model']} --served-name NAME"
            )
        try:
            endpoint = services.endpoint_add(
                model=model,
                url=options["url"],
                weight=options["weight"],
                token=options["token"],
                health_path=options["health_path"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"endpoint {endpoint.id}: {model.name} at {endpoint.url}")

    def _list(self, options: dict[str, Any]) -> None:
        endpoints = list(selectors.endpoint_list())
        if settings.REDIS_URL:
            health = health_read([e.id for e in endpoints])
        else:  # no shared cache: the web process's snapshots are out of reach, poll now
            health = {s.endpoint_id: s for s in asyncio.run(_poll_now(endpoints))}
        self.stdout.write(
            f"{'ID':>4}  {'MODEL':<20} {'STATE':<9} {'HEALTH':<9} {'RUN':>5} {'WAIT':>5} "
            f"{'KV%':>5} {'W':>3}  URL"
        )
        for e in endpoints:
            h = health.get(e.id)
            verdict = "unknown" if h is None else ("healthy" if h.healthy else "failing")
            load = (
                f"{h.running:>5.0f} {h.waiting:>5.0f} {h.kv_usage * 100:>5.1f}"
                if h
                else f"{'-':>5} {'-':>5} {'-':>5}"
            )
            self.stdout.write(
                f"{e.id:>4}  {e.model.name:<20} {e.state:<9} {verdict:<9} {load} {e.weight:>3}  "
                f"{e.url}"
            )

    def _endpoint(self, endpoint_id: int) -> Endpoint:
        endpoint = selectors.endpoint_list().filter(pk=endpoint_id).first()
        if endpoint is None:
            raise CommandError(f"No endpoint with id {endpoint_id}.")
        return endpoint

    def _drain(self, options: dict[str, Any]) -> None:
        endpoint = services.endpoint_drain(endpoint=self._endpoint(options["id"]))
        self.stdout.write(f"endpoint {endpoint.id} is draining: no new calls go to it")

    def _remove(self, options: dict[str, Any]) -> None:
        endpoint = self._endpoint(options["id"])
        services.endpoint_remove(endpoint=endpoint)
        self.stdout.write(f"endpoint {options['id']} removed")
