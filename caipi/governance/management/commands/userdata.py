"""``manage.py userdata export|delete USERNAME``: answer a person's data request."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from caipi.core.models import User
from caipi.governance.audit import audit_record
from caipi.governance.selectors import userdata_export
from caipi.governance.services import userdata_delete


class Command(BaseCommand):
    help = "Export (JSON on stdout) or delete everything CAIPI holds about one user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["export", "delete"])
        parser.add_argument("username")
        parser.add_argument("--yes", action="store_true", help="Delete without asking.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        if options["action"] == "export":
            audit_record(actor=None, action="userdata.export", target=f"user #{user.pk}")
            self.stdout.write(
                json.dumps(userdata_export(user=user), cls=DjangoJSONEncoder, indent=2)
            )
            return
        if (
            not options["yes"]
            and input(f"Delete {user.username} and all their data? [y/N] ") != "y"
        ):
            raise CommandError("Nothing deleted.")
        userdata_delete(user=user, actor=None)
        self.stdout.write(f"Deleted {options['username']} and their data.")
