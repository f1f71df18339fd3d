"""Ready-made checks of a service, each under a name of its choosing."""

import os

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.disk import check_disk_space
from dockerflow_wsgi.checks.http import check_url

UPLOADS = os.environ.get("UPLOADS_DIR", "/tmp")
SIDECAR = os.environ.get("SIDECAR_HEALTH_URL", "http://localhost:8001/health")

# The volume uploads are written to: a warning below 10% free, an error below 5%.
checks.register_partial(
    check_disk_space, UPLOADS, error_below="5%", warning_below="10%", name="uploads_disk"
)

# The sidecar answers 200 when it is ready: a redirect would be its login page, not health.
checks.register_partial(check_url, SIDECAR, expect=range(200, 300), name="sidecar")
