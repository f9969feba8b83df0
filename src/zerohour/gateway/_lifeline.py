"""Scanner processes die with the gateway, even when it is SIGKILLed.

The process pool's workers are children of multiprocessing's fork server, which is a child of
the gateway. Neither notices on its own when the gateway is killed (they sit blocked on pipes
that other processes still hold), so each crash would leave them behind. On Linux,
`prctl(PR_SET_PDEATHSIG)` asks the kernel to kill a process when its parent dies: the fork server
imports `_lifeline_preload` at start-up (a "preload" module, which calls `die_with_parent()`),
and every worker calls it in its initializer.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before we asked
        os._exit(0)
