"""Container health check: exit 0 when this part answers its readiness URL, else 1.

The image has no curl (slim base), so Docker's HEALTHCHECK runs this with the standard
library only. It asks `/readyz` (store and dependencies reachable), not `/healthz`: compose
starts the gateway only once the services it routes to are ready.
"""

import os
import sys
import urllib.error
import urllib.request

PORT = os.environ.get("HUIMIN_PORT", "8000")
PATH = os.environ.get("HUIMIN_HEALTHCHECK_PATH", "/readyz")


def main() -> int:
    """Probe the local server once."""
    url = f"http://127.0.0.1:{PORT}{PATH}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
