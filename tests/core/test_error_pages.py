"""404, 403 and 500 pages in the product's look, translated, and framable by the LMS."""

import pytest
from django.test import Client
from django.urls import path

from caipi.urls import urlpatterns as caipi_urlpatterns

pytestmark = pytest.mark.django_db


def broken(request):
    raise RuntimeError("a bug")


urlpatterns = [path("broken/", broken), *caipi_urlpatterns]


def test_an_unknown_address_gets_the_styled_not_found_page(client):
    answer = client.get("/no/such/page/")
    page = answer.content.decode()
    assert answer.status_code == 404
    assert "core/caipi.css" in page and 'class="topbar"' in page
    assert "Page not found" in page and "open CAIPI from there again" in page


def test_the_not_found_page_speaks_german_to_a_german_browser(client):
    page = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="de">' in page
    assert "Seite nicht gefunden" in page


def test_a_refusal_shows_the_styled_page_with_its_reason(client, outsider, course):
    client.force_login(outsider)
    answer = client.get(f"/courses/{course.id}/")
    page = answer.content.decode()
    assert answer.status_code == 403
    assert "You may not open this page" in page and 'class="topbar"' in page


def test_error_pages_may_be_shown_inside_the_lms_frame(client):
    answer = client.get("/no/such/page/")
    assert "X-Frame-Options" not in answer.headers
    assert "frame-ancestors" in answer["Content-Security-Policy"]


def test_a_crash_shows_the_styled_error_page(settings):
    settings.ROOT_URLCONF = __name__
    crashing = Client(raise_request_exception=False)
    answer = crashing.get("/broken/", HTTP_ACCEPT_LANGUAGE="de")
    page = answer.content.decode()
    assert answer.status_code == 500
    assert "core/caipi.css" in page and "Bei uns ist etwas schiefgegangen" in page
    assert "X-Frame-Options" not in answer.headers
