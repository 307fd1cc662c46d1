"""`python -m gateway`: run the gateway with uvicorn on HUIMIN_HOST:HUIMIN_PORT (8000)."""

import sys

from gateway.app import create_gateway_app
from gateway.routes import RouteFileError
from gateway.settings import GatewaySettings
from shared.app import serve

if __name__ == "__main__":
    try:
        serve(create_gateway_app, GatewaySettings)
    except RouteFileError as exc:
        # The operator's file is wrong: say where, without a traceback.
        print(f"gateway: invalid route table\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
