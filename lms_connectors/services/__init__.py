"""Writes of the LTI tool, one module per concern: launch, registration, roster, grades."""

from lms_connectors.services.grades import resource_link_score_post
from lms_connectors.services.launch import LaunchResult, launch_complete
from lms_connectors.services.platforms import platform_retire, platforms_activate
from lms_connectors.services.registration import (
    RegistrationResult,
    platform_register_dynamic,
    platform_register_manual,
)
from lms_connectors.services.roster import roster_sync

__all__ = [
    "LaunchResult",
    "RegistrationResult",
    "launch_complete",
    "platform_register_dynamic",
    "platform_register_manual",
    "platform_retire",
    "platforms_activate",
    "resource_link_score_post",
    "roster_sync",
]
