"""``manage.py apikeys create|list|revoke``: API keys for users, from the shell.

``create`` prints the new key as its LAST line (scripts take ``| tail -1``); it is shown
only this once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from caipi.core.models import User
from caipi.governance.models import ApiKey
from caipi.governance.services import apikey_create, apikey_revoke


class Command(BaseCommand):
    help = "Create, list or revoke API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key for USERNAME; prints it last.")
        create.add_argument("username")
        create.add_argument("--expires", type=int, metavar="DAYS", help="Expire after DAYS days.")
        create.add_argument("--models", default="", help="Comma-separated models the key may use.")
        create.add_argument("--name", default="", help="A name to recognise the key by.")
        listing = sub.add_parser("list", help="List keys (of USERNAME, or all).")
        listing.add_argument("username", nargs="?")
        revoke = sub.add_parser("revoke", help="Revoke the key with this prefix.")
        revoke.add_argument("prefix", help="The 8 characters after 'caipi-'.")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        models = [name.strip() for name in options["models"].split(",") if name.strip()]
        key, raw_key = apikey_create(
            user=user,
            actor=None,
            name=options["name"],
            expires_days=options["expires"],
            models=models or None,
        )
        expiry = key.expires_at.isoformat(timespec="seconds") if key.expires_at else "never"
        self.stdout.write(
            f"Key caipi-{key.prefix}-… for {user.username}, expires {expiry}. Shown once:"
        )
        self.stdout.write(raw_key)

    def _list(self, options: dict[str, Any]) -> None:
        keys = ApiKey.objects.select_related("user").order_by("created_at")
        if options["username"]:
            keys = keys.filter(user__username=options["username"])
        for key in keys:
            state = "revoked" if key.revoked_at else ("active" if key.is_active else "expired")
            models = ",".join(key.allowed_models or []) or "all models"
            self.stdout.write(
                f"caipi-{key.prefix}-…  {key.user.username:20} {state:8} {models}  {key.name}"
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        prefix = options["prefix"].removeprefix("caipi-").split("-")[0]
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"No key with prefix {prefix!r}.")
        apikey_revoke(key=key, actor=None)
        self.stdout.write(f"Revoked caipi-{key.prefix}-… of {key.user.username}.")
