"""Imported only by multiprocessing's fork server (see `_lifeline`): it dies with the gateway.

Imported first, before the engine the fork server preloads (`ScannerPool`): numpy's OpenBLAS
would start a thread pool at import, and a process forks its children safely only without
other threads (the scan workers use no BLAS routine)."""

import os

from zerohour.gateway._lifeline import die_with_parent

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
die_with_parent()
