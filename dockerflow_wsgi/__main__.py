"""``python -m dockerflow_wsgi``: the ``dockerflow-wsgi`` command, without its script."""

from .cli import main

raise SystemExit(main())
