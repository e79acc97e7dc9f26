"""``manage.py demo``: a working CAIPI on embedded defaults, clickable within a minute.

1. migrate and collect static files;
2. seed the demo course (lecturer, TA, students) and an admin with a fresh password, and
   index its sample lecture notes;
3. deploy the demo model on the local launcher and let the reconciler start it: the real
   small model when it can run here, else at once on the simulator while the real one is
   built in the background (see ``caipi.demo.model``);
4. set up the built-in LTI test platform, so "open as student / lecturer" are real launches;
5. start a Celery worker when a broker is configured, and the web server;
6. print the URL and wait; when the background build is done, the reconciler switches the
   model to the real engine and retires the simulator. Ctrl-C stops everything.
"""

from __future__ import annotations

import io
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from caipi.demo import model as demo_model
from caipi.demo import processes, services
from deploy import engines
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
            help="auto: the real small model; while it is being built, the simulator.",
        )
        parser.add_argument(
            "--no-model-build",
            action="store_true",
            help="Do not build the small model engine if it is missing.",
        )
        parser.add_argument(
            "--model-build-command",
            help="Command (one string, split on spaces) that builds the small model "
            "instead of pip (for tests of the switch-over).",
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
        plan = self._plan(options)
        if plan.note:
            self._say(f"NOTE: {plan.note}")
        name = engines.SMALL_MODEL_NAME if options["engine"] != "simulator" else "simulated-model"
        deployment = demo_model.demo_deploy(name=name, fields=plan.first)
        reconciler = demo_model.ReconcilerThread(deployment.pk)
        reconciler.start()
        self._say(f"starting the {plan.first['engine']} engine")
        children: dict[str, Any] = {}
        builder = None
        try:
            try:
                demo_model.wait_ready(deployment, timeout=180)
            except RuntimeError as exc:
                raise SystemExit(f"the model engine did not start: {exc}") from None
            if plan.build and plan.real:
                builder = self._start_build(plan, deployment, log_dir)
            self._serve(site, name, deployment, builder, children, log_dir, options)
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave engines running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if builder is not None:
                builder.stop()
            processes.stop_all(list(children.values()))
            reconciler.stop()
            demo_model.stop_instances(deployment)
            demo_model.set_notice(None)

    def _plan(self, options: dict[str, Any]) -> demo_model.DemoEngines:
        """What to serve first and what to build: the real model if it runs here already;
        else the simulator now and the build in the background (unless told not to)."""
        wanted = options["engine"]
        if wanted == "simulator":
            return demo_model.DemoEngines(first=demo_model.simulator_fields())
        available = engines.LlamaCppEngine().availability()
        if available:
            return demo_model.DemoEngines(first=demo_model.llamacpp_fields())
        command = options["model_build_command"]
        build = command.split() if command else demo_model.build_command()
        can_build = not options["no_model_build"] and (command or processes.has_compiler())
        if wanted == "llamacpp" and not can_build:
            raise SystemExit(f"--engine llamacpp: {available.reason}")
        if not can_build:
            note = f"{available.reason} — serving the simulator instead"
            return demo_model.DemoEngines(first=demo_model.simulator_fields(), note=note)
        return demo_model.DemoEngines(
            first=demo_model.simulator_fields(), real=demo_model.llamacpp_fields(), build=build
        )

    def _start_build(
        self, plan: demo_model.DemoEngines, deployment: Any, log_dir: Any
    ) -> demo_model.BackgroundBuild:
        assert plan.build is not None and plan.real is not None
        minutes = max(1, round(demo_model.estimated_build_seconds() / 60))
        notice = (
            f"The real model is being built, about {minutes} minute{'s' if minutes > 1 else ''}; "
            "until then the simulator answers (made-up text)."
        )
        demo_model.set_notice(notice)
        self._say(f"{notice} Build log: {log_dir / 'model-build.log'}")
        builder = demo_model.BackgroundBuild(
            command=plan.build,
            log_path=log_dir / "model-build.log",
            deployment=deployment,
            real=plan.real,
            ready_check=lambda: engines.LlamaCppEngine().availability(),
            say=self._say,
        )
        builder.start()
        return builder

    def _serve(
        self,
        site: services.DemoSite,
        name: str,
        deployment: Any,
        builder: demo_model.BackgroundBuild | None,
        children: dict[str, Any],
        log_dir: Any,
        options: dict[str, Any],
    ) -> None:
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
        self._banner(url, site, name, deployment.engine, log_dir)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            exited = self._watch(children, stop, builder, deployment)
        except KeyboardInterrupt:
            exited = None
        if exited:
            self._say(f"the {exited} process stopped; see {log_dir}")
        self._say("stopping")

    def _watch(
        self,
        children: dict[str, Any],
        stop: threading.Event,
        builder: demo_model.BackgroundBuild | None,
        deployment: Any,
    ) -> str | None:
        """Wait for Ctrl-C or a child's exit; say when the real model took over."""
        switching = builder is not None
        while True:
            exited = processes.watch(children, stop, once=True)
            if exited or stop.is_set():
                return exited
            if switching and builder is not None and builder.outcome == "switched":
                if demo_model.swap_finished(deployment):
                    demo_model.set_notice(None)
                    self._say("the real model serves now; the simulator is retired")
                    switching = False
            elif switching and builder is not None and builder.outcome is not None:
                switching = False

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
            f"  operations (instances, scaling): {url}/deploy/ops/\n"
            f"  logs: {logs}\n  Ctrl-C stops everything.\n"
        )
        self.stdout.flush()

    def _say(self, text: str) -> None:
        self.stdout.write(f"caipi demo: {text}")
        self.stdout.flush()
