"""A built-in fake Moodle for the demo and tests: real RS256-signed launches into CAIPI.

Enabled by ``CAIPI_DEV_PLATFORM``; every view answers 404 when it is off. It is a separate
party: it signs with its own key, publishes its own JWKS, and CAIPI validates its launches
exactly like Moodle's (fetching that JWKS over HTTP).
"""
