"""``manage.py models add NAME [--served-name X] [--kind chat|completion|embedding] | list``."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from deploy import selectors, services
from deploy.models import ModelKind


class Command(BaseCommand):
    help = "Create and list the models CAIPI serves."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Create a model clients can ask for by NAME.")
        add.add_argument("name", help="Public name clients use.")
        add.add_argument("--served-name", help="Name the engine serves it under (default NAME).")
        add.add_argument("--kind", choices=ModelKind.values, default=ModelKind.CHAT)
        add.add_argument(
            "--defaults", default="{}", help='Default parameters as JSON, e.g. {"temperature": 0.2}'
        )
        add.add_argument("--description", default="")
        actions.add_parser("list", help="Every model.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for m in selectors.model_list():
                state = "enabled" if m.enabled else "disabled"
                self.stdout.write(f"{m.name:<24} {m.kind:<11} {state:<9} served as {m.served_name}")
            return
        try:
            defaults = json.loads(options["defaults"])
            model = services.model_create(
                name=options["name"],
                served_name=options["served_name"],
                kind=options["kind"],
                default_params=defaults,
                description=options["description"],
            )
        except (ValidationError, json.JSONDecodeError) as exc:
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(message) from None
        self.stdout.write(f"model {model.name} ({model.kind}) served as {model.served_name}")
