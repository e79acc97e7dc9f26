"""The LTI tool as the rest of CAIPI sees it: the public functions of the pylti1p3 seam.

Tests replace the platform (a real HTTP server), never these internals.
"""

from __future__ import annotations

from lms_connectors.lti.advantage import (
    ContentItem,
    LtiServiceError,
    deep_link_response_html,
    public_jwk,
    roster_members,
    score_post,
)
from lms_connectors.lti.launch import Launch, launch_restore, launch_validate, login_response

__all__ = [
    "ContentItem",
    "Launch",
    "LtiServiceError",
    "deep_link_response_html",
    "launch_restore",
    "launch_validate",
    "login_response",
    "public_jwk",
    "roster_members",
    "score_post",
]
