"""Signals sent after heartbeat runs, for metrics and alerting hooks.

``heartbeat_passed`` and ``heartbeat_failed`` are sent after each run; receivers get the
middleware as sender and ``level=``, the highest check level::

    from dockerflow_wsgi.signals import heartbeat_failed

    @heartbeat_failed.connect
    def page_someone(sender, level, **extra):
        ...

``check_changed`` is sent once per transition of a check (see ``transition_runs``), with
``check=`` its name, ``previous=`` and ``level=`` the levels before and after::

    from dockerflow_wsgi.signals import check_changed

    @check_changed.connect
    def tell_the_channel(sender, check, previous, level, **extra):
        ...
"""

from blinker import Namespace

__all__ = ["check_changed", "heartbeat_failed", "heartbeat_passed"]

_signals = Namespace()

heartbeat_passed = _signals.signal("heartbeat-passed")
heartbeat_failed = _signals.signal("heartbeat-failed")
check_changed = _signals.signal("check-changed")
