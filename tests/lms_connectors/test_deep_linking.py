"""Deep linking: the lecturer picks an item, CAIPI returns a signed content item."""

from __future__ import annotations

import json

import jwt
from jwt.algorithms import RSAAlgorithm

from lms_connectors.models import LtiContext
from tests.lms_connectors.conftest import form_fields
from tests.support.lti_platform import LTI


def _verify_with_caipi_jwks(client, token: str) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in client.get("/lti/jwks/").json()["keys"] if k["kid"] == kid)
    key = RSAAlgorithm.from_jwk(json.dumps(jwk))
    return jwt.decode(
        token, key, algorithms=["RS256"], audience=None, options={"verify_aud": False}
    )


def test_an_instructor_places_the_course_assistant_and_it_launches_straight_into_it(browser, lms):
    lms.next_message = "LtiDeepLinkingRequest"
    response = browser.launch("instructor")
    assert response.status_code == 302
    picker = browser.client.get(response["Location"])
    assert b"Course assistant" in picker.content and b"CAIPI course home" in picker.content

    answer = browser.client.post(
        response["Location"], {"target": "assistant", "score_maximum": "10"}
    )
    action, fields = form_fields(answer.content.decode())
    assert action == lms.url("/mod/lti/contentitem_return.php")
    claims = _verify_with_caipi_jwks(browser.client, fields["JWT"])
    assert claims["iss"] == lms.client_id and claims["aud"] == [lms.issuer]
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "deployment_id"] == lms.deployment_id
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-platform-data"
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["custom"] == {"caipi_target": "assistant"}
    assert item["lineItem"]["scoreMaximum"] == 10.0

    # The platform now launches the placed item with its custom parameters.
    lms.next_message = "LtiResourceLinkRequest"
    lms.custom = item["custom"]
    browser.client.logout()
    launched = browser.launch("learner")
    assert launched["Location"] == f"/courses/{LtiContext.objects.get().course_id}/assistant/"


def test_a_learner_cannot_place_activities(browser, lms):
    lms.next_message = "LtiDeepLinkingRequest"
    response = browser.launch("learner")

    assert response.status_code == 403
    assert b"Only teachers" in response.content


def test_the_picker_refuses_a_launch_id_that_is_not_the_users(browser, lms, client):
    lms.next_message = "LtiDeepLinkingRequest"
    response = browser.launch("instructor")
    browser.client.logout()

    assert browser.client.get(response["Location"]).status_code == 403


def test_the_picker_refuses_a_target_it_did_not_offer(browser, lms):
    lms.next_message = "LtiDeepLinkingRequest"
    response = browser.launch("instructor")
    answer = browser.client.post(response["Location"], {"target": "prompt:999"})

    assert answer.status_code == 400
