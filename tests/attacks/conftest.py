"""Attack tests reuse the in-process gateway fixture (a real Gateway on 127.0.0.1)."""

from gateway.conftest import gateway

__all__ = ["gateway"]
