"""Imported only by multiprocessing's fork server (see `_lifeline`): it dies with the gateway."""

from zerohour.gateway._lifeline import die_with_parent

die_with_parent()
