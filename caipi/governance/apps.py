from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "caipi.governance"
    label = "governance"
    verbose_name = "Governance: keys, quotas, usage, privacy"

    def ready(self) -> None:
        from caipi.governance import invalidation

        invalidation.connect()
