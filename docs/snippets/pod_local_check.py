"""A pod-local check for the readiness group: what is wrong with this pod alone."""

import os
import shutil

from dockerflow_wsgi import checks

SCRATCH = os.environ.get("SCRATCH_DIR", "/tmp")
MIN_FREE_BYTES = 100 * 1024 * 1024


@checks.register
def disk_space():
    # This pod's own scratch space: another pod, on another node, may have plenty.
    free = shutil.disk_usage(SCRATCH).free
    if free < MIN_FREE_BYTES:
        return [checks.Error(f"{free} bytes free in {SCRATCH}", id="myservice.E010")]
    return []
