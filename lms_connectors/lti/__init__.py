"""The one place that talks to pylti1p3 (see ``tool``). Nothing else imports pylti1p3."""
