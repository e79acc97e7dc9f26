from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The click-through demo: seed data, local engine, web server in one command.

    It sits at the top of the layering (like the gateway): it combines every app.
    """

    name = "caipi.demo"
    label = "demo"
    verbose_name = "Demo"
