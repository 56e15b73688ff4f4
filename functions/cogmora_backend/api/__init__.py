"""The HTTP API for bots and scripts (the `api` function; docs/openapi.yaml).

It writes exactly the documents the app writes, with the same validation as
the security rules, so the worker and the functions serve both alike.
"""

#: The API's version, reported by `GET /health` and in docs/openapi.yaml.
API_VERSION = "1.0.0"
