"""``manage.py deploy apply FILE... | export [--output FILE] | reconcile [--every S] | status``.

``apply`` reads YAML: one model's spec, or ``models: [spec, ...]`` (what ``export`` writes).
Every spec in every file is validated before any is saved, and all are saved in one
transaction, so a bad file changes nothing; errors name the file, the model and the field.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from deploy import selectors, services
from deploy.reconciler import reconcile_all
from deploy.specs import Spec, SpecInvalid, spec_check, spec_parse


def specs_from_yaml(text: str, *, source: str) -> list[Spec]:
    """Parse and validate every spec in a YAML document; raises CommandError naming each
    bad field as ``source: model: field: message``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CommandError(f"{source}: not valid YAML: {exc}") from None
    items = document.get("models") if isinstance(document, dict) else None
    items = items if isinstance(items, list) else [document]
    specs, errors = [], []
    for index, item in enumerate(items):
        label = item.get("name") if isinstance(item, dict) else None
        try:
            spec = spec_parse(item)
            spec_check(spec)
            specs.append(spec)
        except SpecInvalid as exc:
            for name, messages in exc.message_dict.items():
                errors += [
                    f"{source}: {label or f'models[{index}]'}: {name}: {m}" for m in messages
                ]
    if errors:
        raise CommandError("\n".join(errors))
    return specs


class Command(BaseCommand):
    help = "Apply deployment specs from YAML, export them, run the reconciler."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        apply = actions.add_parser("apply", help="Create or update models from YAML specs.")
        apply.add_argument("files", nargs="+", type=Path)
        export = actions.add_parser("export", help="Write every deployment as YAML.")
        export.add_argument("--output", type=Path, help="File to write (default: stdout).")
        reconcile = actions.add_parser("reconcile", help="Run the reconciler (one tick).")
        reconcile.add_argument(
            "--every", type=float, help="Keep ticking every SECONDS (until Ctrl-C)."
        )
        reconcile.add_argument(
            "--measure",
            type=int,
            metavar="TICKS",
            help="Run TICKS ticks back to back and print this process's CPU time per "
            "deployment per tick (the reconciler's own cost; engines not included).",
        )
        actions.add_parser("status", help="Each deployment's instances.")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _apply(self, options: dict[str, Any]) -> None:
        specs: list[Spec] = []
        for path in options["files"]:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"{path}: {exc.strerror}") from None
            specs += specs_from_yaml(text, source=str(path))
        with transaction.atomic():
            for spec in specs:
                services.deployment_apply(spec=spec, check=False)
        for spec in specs:
            self.stdout.write(
                f"applied {spec.name}: {spec.engine} via {spec.launcher}, "
                f"{spec.min_instances}-{spec.max_instances} instances"
            )

    def _export(self, options: dict[str, Any]) -> None:
        text = yaml.safe_dump(selectors.deployment_documents(), sort_keys=False, allow_unicode=True)
        if options["output"]:
            options["output"].write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text)

    def _reconcile(self, options: dict[str, Any]) -> None:
        if options["measure"]:
            self._measure(options["measure"])
            return
        while True:
            for report in reconcile_all():
                if report.skipped:
                    continue
                changes = {
                    k: v
                    for k, v in vars(report).items()
                    if v and k not in ("deployment_id", "skipped")
                }
                if changes:
                    self.stdout.write(f"deployment {report.deployment_id}: {changes}")
            if not options["every"]:
                return
            time.sleep(options["every"])

    def _measure(self, ticks: int) -> None:
        count = selectors.deployment_list().count()
        if not count:
            raise CommandError("no deployment to reconcile: apply a spec first")
        reconcile_all()  # warm up: imports, connections, instances started
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(ticks):
            reconcile_all()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per = cpu / ticks / count * 1000
        self.stdout.write(
            f"{count} deployments, {ticks} ticks: {per:.2f} ms CPU per deployment per tick "
            f"({wall / ticks * 1000:.1f} ms wall per tick)"
        )

    def _status(self, options: dict[str, Any]) -> None:
        for deployment in selectors.deployment_list():
            self.stdout.write(
                f"{deployment}: {deployment.min_instances}-{deployment.max_instances}"
            )
            for instance in selectors.instance_list(deployment=deployment, live_only=True):
                self.stdout.write(f"  {instance.pk:>5} {instance.state:<9} {instance.url}")
