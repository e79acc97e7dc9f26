"""LTI pages: login, launch, JWKS, dynamic registration, deep linking picker, setup values.

Each view is a few lines around ``lti.tool`` and ``services``; every refusal becomes the
same clear page (``refused.html``) with the refusal's status, logged without personal data.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from caipi.core.models import Course, User
from caipi.core.permissions import SITE_ADMIN, can, require
from lms_connectors import claims, keys, selectors, services, targets
from lms_connectors.errors import LtiRefused
from lms_connectors.lti import tool
from lms_connectors.middleware import frameable_anywhere
from lms_connectors.permissions import COURSE_MANAGE_LMS_LINK, COURSE_PLACE_ACTIVITIES
from lms_connectors.services.registration import CUSTOM_PARAMETERS, tool_url
from lms_connectors.services.registration_guard import registration_invite_create

logger = logging.getLogger(__name__)

SESSION_LAUNCHES = "lti_launch_ids"


def refusals_as_pages(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn an ``LtiRefused`` raised by ``view`` into the refusal page, and log it."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except LtiRefused as refusal:
            logger.warning(
                "LTI refused view=%s code=%s status=%s", view.__name__, refusal.code, refusal.status
            )
            context = {"refusal": refusal}
            return render(request, "lms_connectors/refused.html", context, status=refusal.status)

    return wrapper


@csrf_exempt  # the LMS posts here; the state and signed token are the protection
@require_http_methods(["GET", "POST"])
@refusals_as_pages
def lti_login(request: HttpRequest) -> HttpResponse:
    """OIDC login initiation: cookie check page, then redirect to the LMS's auth endpoint."""
    return tool.login_response(request=request, launch_url=tool_url("/lti/launch/"))


@csrf_exempt  # the LMS's auto-submitted form; the id_token is signed, the state used once
@require_POST
@refusals_as_pages
def lti_launch(request: HttpRequest) -> HttpResponse:
    """Validate the launch, set up course/user/membership, sign in and open the target."""
    launch = tool.launch_validate(request=request)
    result = services.launch_complete(launch=launch)
    is_deep_link = launch.message_type == claims.DEEP_LINKING_REQUEST
    if is_deep_link and not can(result.user, COURSE_PLACE_ACTIVITIES, result.course):
        raise LtiRefused("not_teaching", _("Only teachers can add CAIPI activities."), status=403)
    login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_LAUNCHES] = [
        *request.session.get(SESSION_LAUNCHES, [])[-4:],
        launch.launch_id,
    ]
    if is_deep_link:
        return HttpResponseRedirect(f"/lti/deep-link/{launch.launch_id}/")
    return HttpResponseRedirect(result.url)


@require_GET
def lti_jwks(request: HttpRequest) -> JsonResponse:
    """CAIPI's public keys: the signing key and retired keys still within their grace."""
    published = [tool.public_jwk(public_pem=pem) for pem in keys.published_public_pems()]
    response = JsonResponse({"keys": published})
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
@refusals_as_pages
def lti_register(request: HttpRequest, invite_token: str | None = None) -> HttpResponse:
    """Dynamic registration: the URL an LMS admin pastes. Ends with the close-dialog page.

    Runs on GET because the LMS opens it so. ``invite_token`` is the one-time URL an admin
    generated on the setup page; the plain URL works only for trusted LMS hosts. The
    result page has no actions and is shown in Moodle's registration dialog (any frame).
    """
    config_url = request.GET.get("openid_configuration", "")
    if not config_url:
        raise LtiRefused(
            "missing_parameters",
            _(
                "This is CAIPI's registration URL: paste it into the LMS's tool registration "
                "(Moodle: Site administration > Plugins > Manage tools)."
            ),
        )
    result = services.platform_register_dynamic(
        openid_configuration=config_url,
        registration_token=request.GET.get("registration_token", ""),
        invite_token=invite_token,
    )
    page = render(request, "lms_connectors/registered.html", {"result": result})
    return frameable_anywhere(page)


def _launch_for_user(request: HttpRequest, launch_id: str) -> tool.Launch:
    if launch_id not in request.session.get(SESSION_LAUNCHES, []):
        raise LtiRefused(
            "launch_expired", _("This launch is not yours or has expired."), status=403
        )
    launch = tool.launch_restore(request=request, launch_id=launch_id)
    if launch.message_type != claims.DEEP_LINKING_REQUEST:
        raise LtiRefused("invalid_launch", _("This launch does not place activities."))
    return launch


def _course_of(launch: tool.Launch) -> Course:
    context_id = (launch.claims.get(claims.CONTEXT) or {}).get("id")
    platform = selectors.platform_find(issuer=launch.issuer, client_id=launch.client_id)
    return get_object_or_404(
        Course, lti_contexts__platform=platform, lti_contexts__context_id=context_id
    )


@require_http_methods(["GET", "POST"])
@refusals_as_pages
def lti_deep_link(request: HttpRequest, launch_id: str) -> HttpResponse:
    """The lecturer picks what to place; the signed content item goes back to the LMS."""
    launch = _launch_for_user(request, launch_id)
    course = _course_of(launch)
    choices = {choice.target: choice for choice in targets.target_choices(course=course)}
    if request.method == "GET":
        context = {"course": course, "choices": choices.values(), "launch_id": launch_id}
        return render(request, "lms_connectors/deep_link.html", context)
    choice = choices.get(request.POST.get("target", ""))
    if choice is None:
        raise LtiRefused("unknown_target", _("Pick one of the offered items."))
    platform = selectors.platform_find(issuer=launch.issuer, client_id=launch.client_id)
    if platform is None:  # deleted since the launch
        raise LtiRefused("unknown_platform", _("This LMS is no longer registered."))
    item = tool.ContentItem(
        title=choice.title,
        text=choice.description,
        url=tool_url(f"/lti/launch/?target={choice.target}"),
        custom={claims.CUSTOM_TARGET: choice.target},
        score_maximum=_score_maximum(request.POST.get("score_maximum", "")),
    )
    html = tool.deep_link_response_html(launch=launch, platform=platform, items=[item])
    return HttpResponse(html)


def _score_maximum(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value > 0 else None


@login_required
@require_http_methods(["GET", "POST"])
def lti_setup(request: HttpRequest) -> HttpResponse:
    """For LMS admins: the values to paste into Moodle, the registered platforms, and (on
    POST) a new one-time registration URL, shown once."""
    require(request.user, SITE_ADMIN)
    invite_url = ""
    if request.method == "POST" and isinstance(request.user, User):
        invite_url = registration_invite_create(
            created_by=request.user, activate=request.POST.get("activate") == "on"
        )
    values = [
        (gettext("Registration URL (dynamic registration)"), tool_url("/lti/register/")),
        (gettext("Tool URL"), tool_url("/lti/launch/")),
        (gettext("Initiate login URL"), tool_url("/lti/login/")),
        (gettext("Redirection URI(s)"), tool_url("/lti/launch/")),
        (gettext("Public keyset URL (JWKS)"), tool_url("/lti/jwks/")),
        (gettext("Content selection URL (deep linking)"), tool_url("/lti/launch/")),
        (
            gettext("Custom parameters"),
            "\n".join(f"{k}={v}" for k, v in CUSTOM_PARAMETERS.items()),
        ),
    ]
    context = {
        "values": values,
        "platforms": selectors.platform_list(),
        "invite_url": invite_url,
        "invite_hours": settings.LTI_REGISTRATION_URL_HOURS,
        "trusted_hosts": settings.LTI_TRUSTED_ISSUERS,
    }
    return render(request, "lms_connectors/setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def lti_pending(request: HttpRequest) -> HttpResponse:
    """For admins: the registrations waiting for activation, on one screen, with bulk
    activate and retire."""
    require(request.user, SITE_ADMIN)
    message = ""
    if request.method == "POST":
        chosen = list(selectors.platforms_pending().filter(pk__in=request.POST.getlist("platform")))
        if request.POST.get("action") == "retire":
            for platform in chosen:
                services.platform_retire(platform=platform)
            message = ngettext(
                "%(count)d registration retired.", "%(count)d registrations retired.", len(chosen)
            ) % {"count": len(chosen)}
        else:
            count = services.platforms_activate(platforms=chosen)
            message = ngettext(
                "%(count)d registration activated: its launches are accepted now.",
                "%(count)d registrations activated: their launches are accepted now.",
                count,
            ) % {"count": count}
    context = {"platforms": selectors.platforms_pending(), "message": message}
    return render(request, "lms_connectors/pending.html", context)


@require_http_methods(["GET", "POST"])
@refusals_as_pages
def lti_course(request: HttpRequest, course_id: int) -> HttpResponse:
    """A lecturer's view of the course's LMS link: roster sync button, placed activities."""
    course = get_object_or_404(Course, pk=course_id)
    _require(request, COURSE_MANAGE_LMS_LINK, course)
    context = selectors.context_for_course(course=course)
    if request.method == "POST" and context is not None:
        result = services.roster_sync(context=context)
        context.refresh_from_db()  # the page shows the time of the sync just made
        message = (
            f"Roster synced: {result.created} added, {result.updated} changed, "
            f"{result.removed} removed."
        )
        return render(request, "lms_connectors/course.html", _course_page(course, context, message))
    return render(request, "lms_connectors/course.html", _course_page(course, context, ""))


def _course_page(course: Course, context: Any, message: str) -> dict[str, Any]:
    links = selectors.resource_links_for_course(course=course)
    return {"course": course, "context": context, "links": links, "message": message}


def _require(request: HttpRequest, action: str, course: Course) -> None:
    """Refuse with the LTI refusal page unless the user may do ``action`` in ``course``."""
    if not request.user.is_authenticated:
        raise LtiRefused("not_signed_in", _("Open CAIPI from your LMS course first."), status=401)
    if not can(request.user, action, course):
        raise LtiRefused("not_teaching", _("Only the course's teachers can do this."), status=403)
