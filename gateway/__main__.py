"""`python -m gateway`: run the gateway with uvicorn on HUIMIN_HOST:HUIMIN_PORT (8000)."""

from gateway.app import create_gateway_app
from gateway.settings import GatewaySettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_gateway_app, GatewaySettings)
