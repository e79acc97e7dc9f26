"""Usage-policy gates: a decorator for HTML pages and a DRF permission for session APIs.

With no policy published nothing is asked. HTML pages redirect to the policy page (and
back after accepting); session APIs answer 403 with code ``policy_not_accepted``. API keys
are not gated per call: creating a key accepts the current policy (see
``services.apikey_create``), because a program cannot read and accept a page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework.permissions import BasePermission

from caipi.core.errors import PermissionDenied
from caipi.governance.principal import Principal
from caipi.governance.selectors import policy_accepted


class PolicyNotAccepted(PermissionDenied):
    code = "policy_not_accepted"


def policy_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send signed-in users who have not accepted the current policy to accept it first."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not policy_accepted(user=request.user):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('governance:policy')}?{query}")
        return view(request, *args, **kwargs)

    return wrapper


class PolicyAccepted(BasePermission):
    """DRF permission: refuse with ``policy_not_accepted`` until the policy is accepted."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if isinstance(request.auth, Principal):
            return True  # an API key: accepted with the key, as on /v1 (see above)
        if request.user.is_authenticated and not policy_accepted(user=request.user):
            raise PolicyNotAccepted(
                _("Accept the usage policy first (POST /api/policy)."),
                extra={"policy_url": reverse("governance:policy")},
            )
        return True
