"""A pod-local check for the readiness group: what is wrong with this pod alone."""

import os

from dockerflow_wsgi import checks
from dockerflow_wsgi.checks.disk import check_disk_space

SCRATCH = os.environ.get("SCRATCH_DIR", "/tmp")
MIN_FREE_BYTES = 100 * 1024 * 1024

# This pod's own scratch space (another pod, on another node, may have plenty), under the name
# the readiness group gives it.
disk_space = checks.register_partial(
    check_disk_space, SCRATCH, error_below=MIN_FREE_BYTES, name="disk_space"
)
