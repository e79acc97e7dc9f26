from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "caipi.governance"
    label = "governance"
    verbose_name = "Governance: keys, quotas, usage, privacy"

    def ready(self) -> None:
        from caipi.core.permissions import register_model_policy
        from caipi.governance import invalidation, redaction
        from caipi.governance.principal import user_may_use_model

        invalidation.connect()
        redaction.install()
        register_model_policy(user_may_use_model)
