from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "caipi.governance"
    label = "governance"
    verbose_name = "Governance: keys, quotas, usage, privacy"

    def ready(self) -> None:
        from caipi.core.audit import register_audit
        from caipi.core.permissions import register_model_policy
        from caipi.governance import invalidation, redaction
        from caipi.governance.audit import audit_record, audit_snapshot
        from caipi.governance.principal import user_may_use_model

        invalidation.connect()
        redaction.install()
        register_model_policy(user_may_use_model)
        register_audit(recorder=audit_record, snapshot=audit_snapshot)
