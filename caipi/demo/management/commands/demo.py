"""``manage.py demo``: a working CAIPI on embedded defaults, ready to click through.

1. migrate and collect static files;
2. seed the demo course (lecturer, TA, students) and an admin with a fresh password, and
   index its sample lecture notes;
3. start the local engine — the real small model (built once if needed) or the simulator;
4. register it as the demo model's endpoint;
5. set up the built-in LTI test platform, so "open as student / lecturer" are real launches;
6. start a Celery worker when a broker is configured, and the web server;
7. print the URL and wait; Ctrl-C stops everything.
"""

from __future__ import annotations

import io
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from caipi.demo import processes, services
from deploy.launchers import local


class Command(BaseCommand):
    help = "Start a demo CAIPI: seed data, a local model engine and the web server."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--engine",
            choices=["auto", "llamacpp", "simulator"],
            default="auto",
            help="auto: the real small model when it can run here, else the simulator.",
        )
        parser.add_argument(
            "--no-model-build",
            action="store_true",
            help="Do not try to build the small model engine if it is missing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        log_dir = settings.DATA_DIR / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._say("preparing the database and static files")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        site = services.demo_seed()
        self._say("indexing the sample lecture notes (the course assistant answers from them)")
        for problem in services.demo_index_notes(course=site.course):
            self._say(f"NOTE: {problem}")
        choice = processes.choose_engine(
            wanted=options["engine"],
            install=not options["no_model_build"],
            log_dir=log_dir,
            say=self._say,
        )
        if choice.fallback_reason:
            self._say(f"NOTE: {choice.fallback_reason}")
        self._say(f"starting the {choice.engine.kind} engine")
        engine = local.launch(choice.engine, log_dir=log_dir, timeout=180)
        children = {"engine": engine.process}
        try:
            self._serve(site, choice, engine, children, log_dir, options)
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave the engine running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            # The web server first (it relays to the engine), then the engine through its
            # launcher, which stops the engine's whole process group.
            processes.stop_all([p for name, p in children.items() if name != "engine"])
            engine.stop()

    def _serve(
        self,
        site: services.DemoSite,
        choice: Any,
        engine: local.LocalEngineProcess,
        children: dict[str, Any],
        log_dir: Any,
        options: dict[str, Any],
    ) -> None:
        name = choice.engine.served_model_name
        services.demo_register_engine(
            name=name,
            url=engine.base_url,
            health_path=choice.engine.health_path,
            description=f"{choice.engine.kind} engine started by the demo on port {engine.port}",
        )
        services.demo_seed_prompts(course=site.course, model=name)
        url = f"http://{options['host']}:{options['port']}"
        env = {"CAIPI_DEV_PLATFORM": "1", "SITE_URL": url}
        self._setup_dev_platform(url, site.course.pk)
        if settings.CELERY_BROKER_URL:
            children["celery"] = processes.start_celery_worker(log_dir=log_dir)
        web = processes.start_web_server(
            host=options["host"], port=options["port"], env=env, log_dir=log_dir
        )
        children["web"] = web
        try:
            local.wait_for_ok(f"{url}/healthz", web, timeout=60)
        except local.NotReady as exc:
            raise SystemExit(f"the web server {exc}; see {log_dir / 'web.log'}") from None
        self._banner(url, site, name, choice.engine.kind, log_dir)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            exited = processes.watch(children, stop)
        except KeyboardInterrupt:
            exited = None
        if exited:
            self._say(f"the {exited} process stopped; see {log_dir}")
        self._say("stopping")

    def _setup_dev_platform(self, url: str, course_id: int) -> None:
        # The dev platform's issuer and URLs derive from SITE_URL: make this process agree
        # with the web server it is about to start (which gets SITE_URL from its environment).
        settings.SITE_URL = url
        # Its own message would say the platform is off: true of this process, not of the
        # web server, which gets CAIPI_DEV_PLATFORM=1.
        call_command("lti_devplatform", "setup", course=course_id, stdout=io.StringIO())

    def _banner(self, url: str, site: services.DemoSite, model: str, kind: str, logs: Any) -> None:
        self.stdout.write(
            f"\n  CAIPI is running: open {url}/\n"
            f"  try it as a student or lecturer (real LTI launches): {url}/lti/dev/\n"
            f"  model: {model} ({kind} engine)\n"
            f"  admin pages: {url}/admin/  user {site.admin_username}, "
            f"password {site.admin_password}\n"
            f"  logs: {logs}\n  Ctrl-C stops everything.\n"
        )
        self.stdout.flush()

    def _say(self, text: str) -> None:
        self.stdout.write(f"caipi demo: {text}")
        self.stdout.flush()
