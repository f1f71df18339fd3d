"""Testing the request summary in a Django project: through the WSGI application.

Django's test ``Client`` calls Django's handler directly, so neither the Dockerflow paths nor
the summary are there. WebTest calls the application ``get_wsgi_application()`` returns, as a
server does, and closes every response: the summary is written before the request returns.
A ``TestCase``: the heartbeat's database checks connect from threads of their own, which a
``SimpleTestCase`` forbids.
"""

import webtest
from django.test import TestCase

from dockerflow_wsgi.django import get_wsgi_application


class DockerflowTests(TestCase):
    def setUp(self):
        self.app = webtest.TestApp(get_wsgi_application())

    def test_one_summary_per_request(self):
        with self.assertLogs("request.summary", level="INFO") as logs:
            response = self.app.get("/", headers={"X-Request-ID": "test-1"})

        self.assertEqual(response.headers["X-Request-ID"], "test-1")
        [summary] = logs.records
        self.assertEqual((summary.rid, summary.code, summary.uid), ("test-1", 200, ""))

    def test_the_heartbeat_passes(self):
        response = self.app.get("/__heartbeat__")

        self.assertEqual(response.json["status"], "ok")
