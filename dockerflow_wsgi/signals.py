"""Signals sent after each heartbeat run, for metrics and alerting hooks.

Receivers get the middleware as sender and ``level=``, the highest check level::

    from dockerflow_wsgi.signals import heartbeat_failed

    @heartbeat_failed.connect
    def page_someone(sender, level, **extra):
        ...
"""

from blinker import Namespace

__all__ = ["heartbeat_failed", "heartbeat_passed"]

_signals = Namespace()

heartbeat_passed = _signals.signal("heartbeat-passed")
heartbeat_failed = _signals.signal("heartbeat-failed")
