"""The development platform's endpoints: launch buttons, OIDC auth, JWKS, token, NRPS, AGS,
and the deep linking return. All answer 404 unless ``CAIPI_DEV_PLATFORM`` is on."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
from django.conf import settings
from django.core.cache import cache
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from caipi.core.jsonbody import JsonBodyError, json_loads_bounded
from lms_connectors import claims, keys
from lms_connectors.devplatform import services, signing
from lms_connectors.lti import tool

logger = logging.getLogger(__name__)

ITEMS_KEY = "caipi-devplatform-items"
SCORES_KEY = "caipi-devplatform-scores"


def enabled_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless the development platform is switched on."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LTI_DEV_PLATFORM:
            raise Http404("The development platform is off.")
        return view(request, *args, **kwargs)

    return wrapper


def _caipi_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


@enabled_only
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The fake Moodle course page: open CAIPI as student or lecturer, placed activities."""
    context = {
        "course": signing.CONTEXT,
        "personas": {persona: services.persona_profile(persona) for persona in signing.PERSONAS},
        "items": cache.get(ITEMS_KEY, []),
        "scores": cache.get(SCORES_KEY, []),
    }
    return render(request, "devplatform/index.html", context)


@enabled_only
@require_GET
def start(request: HttpRequest, persona: str) -> HttpResponse:
    """Third-party initiated login: send the browser to CAIPI's /lti/login/ like Moodle."""
    if persona not in signing.PERSONAS:
        raise Http404("No such persona.")
    services.devplatform_setup()
    message = request.GET.get("message", "resource")
    params = {
        "iss": signing.issuer(),
        "login_hint": persona,
        "target_link_uri": _caipi_url("/lti/launch/"),
        "lti_message_hint": f"{message}:{request.GET.get('item', '')}",
        "client_id": signing.CLIENT_ID,
        "lti_deployment_id": signing.DEPLOYMENT_ID,
    }
    return HttpResponseRedirect(_caipi_url("/lti/login/") + "?" + urlencode(params))


def _auth_error(request: HttpRequest) -> str | None:
    expected = {
        "client_id": signing.CLIENT_ID,
        "redirect_uri": _caipi_url("/lti/launch/"),
        "response_type": "id_token",
        "scope": "openid",
    }
    for name, value in expected.items():
        if request.GET.get(name) != value:
            return f"Bad {name}."
    if request.GET.get("login_hint") not in signing.PERSONAS:
        return "Unknown login_hint."
    if not request.GET.get("nonce") or not request.GET.get("state"):
        return "Missing nonce or state."
    return None


@enabled_only
@require_GET
def auth(request: HttpRequest) -> HttpResponse:
    """OIDC authentication: sign the id_token and auto-post it with the state to CAIPI."""
    error = _auth_error(request)
    if error:
        return HttpResponseBadRequest(error)
    message, _, item_id = (request.GET.get("lti_message_hint") or "resource:").partition(":")
    item = next((i for i in cache.get(ITEMS_KEY, []) if i["id"] == item_id), None)
    custom = {**(item["custom"] if item else {}), "dev_link_id": item_id or "dev-link-home"}
    body = services.launch_claims(
        persona=request.GET["login_hint"],
        nonce=request.GET["nonce"],
        message="deeplink" if message == "deeplink" else "resource",
        custom=custom,
    )
    context = {
        "action": request.GET["redirect_uri"],
        "fields": {"id_token": signing.sign(body), "state": request.GET["state"]},
    }
    return render(request, "devplatform/autopost.html", context)


@enabled_only
@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """The platform's public keys."""
    return JsonResponse(signing.jwks())


def _verify_from_caipi(token: str, *, audience: str) -> dict[str, Any]:
    """Verify a JWT CAIPI signed, against CAIPI's published JWKS."""
    published = [tool.public_jwk(public_pem=pem) for pem in keys.published_public_pems()]
    key_set = jwt.PyJWKSet.from_dict({"keys": published})
    kid = jwt.get_unverified_header(token).get("kid")
    key = next(k for k in key_set.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)


@csrf_exempt
@enabled_only
@require_POST
def token(request: HttpRequest) -> JsonResponse:
    """OAuth2 client credentials with a private_key_jwt assertion signed by CAIPI."""
    try:
        assertion = _verify_from_caipi(
            request.POST.get("client_assertion", ""), audience=signing.base_url() + "/token/"
        )
    except (jwt.InvalidTokenError, StopIteration):
        return JsonResponse({"error": "invalid_client"}, status=401)
    if assertion.get("iss") != signing.CLIENT_ID:
        return JsonResponse({"error": "invalid_client"}, status=401)
    access_token = signing.new_id()
    scopes = request.POST.get("scope", "").split()
    cache.set(f"caipi-devplatform-token:{access_token}", scopes, 3600)
    return JsonResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": " ".join(scopes),
        }
    )


def _authorised(request: HttpRequest, scope: str) -> bool:
    header = request.headers.get("Authorization", "")
    scopes = cache.get(f"caipi-devplatform-token:{header.removeprefix('Bearer ')}") or []
    return header.startswith("Bearer ") and scope in scopes


@enabled_only
@require_GET
def nrps(request: HttpRequest, context_id: str) -> JsonResponse:
    """Names and roles of the demo course."""
    if not _authorised(request, claims.SCOPE_NRPS):
        return JsonResponse({"error": "unauthorized"}, status=401)
    if context_id != signing.CONTEXT["id"]:
        raise Http404("No such context.")
    members = [
        {
            "status": "Active",
            "user_id": p["sub"],
            **{k: p[k] for k in ("name", "given_name", "family_name", "email", "roles")},
        }
        for p in map(services.persona_profile, signing.PERSONAS)
    ]
    body = {"id": request.build_absolute_uri(), "context": signing.CONTEXT, "members": members}
    return JsonResponse(
        body, content_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    )


@csrf_exempt
@enabled_only
@require_POST
def ags_score(request: HttpRequest, lineitem_id: str) -> HttpResponse:
    """Receive a score for a line item of the demo course (shown on the index page)."""
    if not _authorised(request, claims.SCOPE_SCORE):
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        score = json_loads_bounded(request.body)
    except JsonBodyError as exc:
        return HttpResponseBadRequest(exc.message)
    if not isinstance(score, dict):
        return HttpResponseBadRequest("A score must be a JSON object.")
    scores = [*cache.get(SCORES_KEY, []), {"lineitem": lineitem_id, **score}][-50:]
    cache.set(SCORES_KEY, scores, None)
    return HttpResponse(status=204)


@csrf_exempt
@enabled_only
@require_http_methods(["POST"])
def deep_link_return(request: HttpRequest) -> HttpResponse:
    """Receive CAIPI's signed deep linking response and place its items in the course."""
    try:
        body = _verify_from_caipi(request.POST.get("JWT", ""), audience=signing.issuer())
    except (jwt.InvalidTokenError, StopIteration):
        return HttpResponseBadRequest("The deep linking response does not verify.")
    if body.get(claims.MESSAGE_TYPE) != "LtiDeepLinkingResponse":
        return HttpResponseBadRequest("Not a deep linking response.")
    items = cache.get(ITEMS_KEY, [])
    for content in body.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", []):
        items.append(
            {
                "id": signing.new_id()[:12],
                "title": content.get("title", ""),
                "custom": content.get("custom") or {},
                "line_item": content.get("lineItem"),
            }
        )
    cache.set(ITEMS_KEY, items[-20:], None)
    return HttpResponseRedirect(signing.base_url() + "/")
