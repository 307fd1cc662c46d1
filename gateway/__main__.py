"""`python -m gateway`: serve the gateway with granian on HUIMIN_HOST:HUIMIN_PORT (8000)."""

import sys

from gateway.app import create_gateway_app
from gateway.routes import RouteFileError
from gateway.server import run
from gateway.settings import GatewaySettings
from shared.app import freeze_heap, load_settings
from shared.logging import configure_logging

if __name__ == "__main__":
    settings = load_settings(GatewaySettings)
    configure_logging(settings)
    try:
        app = create_gateway_app(settings)
    except RouteFileError as exc:
        # The operator's file is wrong: say where, without a traceback.
        print(f"gateway: invalid route table\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    freeze_heap()
    run(app, settings)
