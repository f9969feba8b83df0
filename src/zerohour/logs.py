"""Logging set-up shared by the gateway and the provider."""

from __future__ import annotations

import logging


def quiet_libraries() -> None:
    """Library chatter off unless it is a warning: aiosmtpd's per-command lines, httpx/httpcore's
    one INFO line per request (a poll every minute, a bundle download...)."""
    for name in ("mail.log", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
