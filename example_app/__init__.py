"""A small Flask service wired with dockerflow-wsgi, served by ``make run``."""
