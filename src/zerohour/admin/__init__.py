"""Admin surfaces: REST API, dashboard, auth (see api.py, web.py, auth.py, server.py)."""
