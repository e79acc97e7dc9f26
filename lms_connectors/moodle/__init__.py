"""Moodle: the web services client (the only code calling Moodle's REST API) and the
``block_caipi`` plugin source (PHP, packaged by ``manage.py moodle_plugin``)."""

from lms_connectors.moodle.client import MoodleClient, client_for_context
from lms_connectors.moodle.contents import (
    MoodleActivity,
    MoodleCourse,
    MoodleEvent,
    MoodleFile,
    MoodleSection,
)
from lms_connectors.moodle.errors import MoodleError

__all__ = [
    "MoodleActivity",
    "MoodleClient",
    "MoodleCourse",
    "MoodleError",
    "MoodleEvent",
    "MoodleFile",
    "MoodleSection",
    "client_for_context",
]
