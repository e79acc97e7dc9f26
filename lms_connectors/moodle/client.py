"""Moodle's REST web services: one client, the only code in CAIPI that calls them.

Calls go through ``lms_connectors.http`` (one timeout, one User-Agent) to
``<wwwroot>/webservice/rest/server.php`` with a site token an admin sets per platform
(``Platform.ws_token``). The functions CAIPI calls are ``FUNCTIONS``; the admin guide lists
them with the service user's capabilities. Every failure becomes a ``MoodleError`` that says
who can fix it (see ``errors``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from lms_connectors.http import HttpError, LmsSession, lms_session
from lms_connectors.moodle import errors
from lms_connectors.moodle.contents import (
    MoodleCourse,
    MoodleEvent,
    MoodleFile,
    course_from_contents,
    events_from_answer,
)

logger = logging.getLogger(__name__)

REST_PATH = "/webservice/rest/server.php"
FUNCTIONS = (
    "core_webservice_get_site_info",
    "core_course_get_courses_by_field",
    "core_course_get_contents",
    "core_calendar_get_calendar_events",
)
_TOKEN_CODES = {"invalidtoken", "invalidtimedtoken"}
_ACCESS_CODES = {"accessexception", "nopermissions", "servicenotavailable", "requireloginerror"}


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """PHP-style form fields Moodle expects: ``{"o": [{"n": 1}]}`` → ``{"o[0][n]": "1"}``."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        elif isinstance(value, list | tuple):
            flat.update(flatten({str(i): item for i, item in enumerate(value)}, name))
        elif isinstance(value, bool):
            flat[name] = "1" if value else "0"
        else:
            flat[name] = str(value)
    return flat


class MoodleClient:
    """Moodle's web services at ``base_url`` (its wwwroot) with ``token``.

    Raises ``MoodleError`` from every method; never logs the token.
    """

    def __init__(self, *, base_url: str, token: str, session: LmsSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session = session

    def _http(self) -> LmsSession:
        return self._session or lms_session()

    def call(self, function: str, **params: Any) -> Any:
        """Call one web service function; returns its decoded JSON answer."""
        data = {"wstoken": self._token, "wsfunction": function, "moodlewsrestformat": "json"}
        data.update(flatten(params))
        session = self._http()
        try:
            response = session.post(self.base_url + REST_PATH, data=data, allow_redirects=False)
        except HttpError:
            logger.info("moodle call failed: no answer function=%s", function)
            raise errors.unavailable() from None
        finally:
            if self._session is None:
                session.close()
        if response.status_code >= 500:
            raise errors.unavailable()
        if response.status_code == 403 and not response.content.strip():
            raise errors.web_services_off()  # what server.php answers with REST off
        answer = _json(response)
        _raise_for_exception(answer, function)
        return answer

    def site_info(self) -> dict[str, Any]:
        """Who the token belongs to and which functions the service offers (a health check)."""
        return dict(self.call("core_webservice_get_site_info"))

    def course(self, course_id: int | str) -> MoodleCourse:
        """The course's name, dates, sections, activities and files (hidden ones included,
        marked, when the service user may see them)."""
        found = self.call("core_course_get_courses_by_field", field="id", value=course_id)
        courses = found.get("courses") or [] if isinstance(found, dict) else []
        if not courses:
            raise errors.MoodleError(
                "moodle_course_missing", "Moodle has no course with this course's id any more."
            )
        contents = self.call("core_course_get_contents", courseid=course_id)
        return course_from_contents(course=courses[0], contents=contents)

    def calendar_events(
        self, course_id: int | str, *, since: datetime | None = None
    ) -> list[MoodleEvent]:
        """The course's calendar events (from ``since``, default: all), by start time.

        Moodle's own default would start at "now"; CAIPI asks from ``since`` or the start.
        """
        options: dict[str, Any] = {
            "userevents": False,
            "siteevents": False,
            "timestart": int(since.timestamp()) if since is not None else 0,
        }
        answer = self.call(
            "core_calendar_get_calendar_events",
            events={"courseids": [course_id]},
            options=options,
        )
        return events_from_answer(answer)

    def download(self, file: MoodleFile) -> bytes:
        """The file's bytes, fetched with the token. Refuses URLs off Moodle's origin (the
        token must not travel elsewhere)."""
        if _origin(file.url) != _origin(self.base_url):
            raise errors.MoodleError(
                "moodle_foreign_file", f"“{file.name}” is not stored in this Moodle."
            )
        session = self._http()
        try:
            response = session.get(file.url, params={"token": self._token}, allow_redirects=False)
        except HttpError:
            raise errors.unavailable() from None
        finally:
            if self._session is None:
                session.close()
        if response.status_code == 404:
            raise errors.file_gone(file.name)
        if response.status_code >= 500:
            raise errors.unavailable()
        if "json" in response.headers.get("Content-Type", ""):
            # pluginfile.php is an AJAX script: its errors come as JSON, sometimes with 200.
            answer = _json(response)
            if answer.get("errorcode") == "filenotfound":
                raise errors.file_gone(file.name)
            _raise_for_exception(answer, "file download")
        if response.status_code != 200:
            raise errors.file_gone(file.name)
        return response.content


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        logger.info("moodle answered no JSON status=%s", response.status_code)
        raise errors.not_json() from None


def _raise_for_exception(answer: Any, function: str) -> None:
    if not isinstance(answer, dict) or not ("exception" in answer or "errorcode" in answer):
        return
    code = str(answer.get("errorcode") or "")
    logger.info("moodle refused function=%s errorcode=%s", function, code)
    if code in _TOKEN_CODES:
        raise errors.token_rejected()
    if code in _ACCESS_CODES:
        raise errors.access_denied(function)
    if code == "filenotfound":
        raise errors.file_gone("the file")
    raise errors.refused(function, code or "unknown error")


def client_for_context(context: Any) -> MoodleClient:
    """The client for an ``LtiContext``'s LMS: its active registration's web service URL
    and token. Raises ``MoodleError`` when none is configured."""
    from lms_connectors import selectors

    platform = selectors.platform_for_services(context=context)
    token = platform.ws_token if platform is not None else ""
    if platform is None or not token:
        raise errors.not_configured()
    return MoodleClient(base_url=platform.ws_base_url, token=token)
