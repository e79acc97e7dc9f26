"""Writes of governance, one module per concern; every write is a keyword-only
``<entity>_<verb>`` function, atomic where it touches several rows, and audited.

- ``apikeys``: mint and revoke API keys;
- ``policy``: publish and accept the usage policy;
- ``courses``: a course's budget and settings;
- ``conversations``: keep and purge conversations of opted-in courses;
- ``userdata``: delete a user's data on request;
- ``quotas``: reserve a call's quota before it runs, settle it after (Redis, atomic);
- ``quota_leases``: slices of large, busy quota counters held by this process;
- ``usage``: record one call's usage (buffered, written in batches).
"""

from caipi.governance.services.apikeys import apikey_create, apikey_revoke
from caipi.governance.services.conversations import (
    conversation_append,
    conversation_open,
    conversations_purge_expired,
)
from caipi.governance.services.courses import (
    AboveCeiling,
    AdminSetting,
    course_budget_set,
    course_settings_update,
)
from caipi.governance.services.policy import policy_accept, policy_publish
from caipi.governance.services.quota_leases import quota_leases_return, quota_leases_tick
from caipi.governance.services.quotas import quota_release, quota_reserve, quota_settle
from caipi.governance.services.usage import usage_flush, usage_record
from caipi.governance.services.userdata import userdata_delete

__all__ = [
    "AboveCeiling",
    "AdminSetting",
    "apikey_create",
    "apikey_revoke",
    "conversation_append",
    "conversation_open",
    "conversations_purge_expired",
    "course_budget_set",
    "course_settings_update",
    "policy_accept",
    "policy_publish",
    "quota_leases_return",
    "quota_leases_tick",
    "quota_release",
    "quota_reserve",
    "quota_settle",
    "usage_flush",
    "usage_record",
    "userdata_delete",
]
