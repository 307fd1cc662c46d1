"""`python -m services.registry`: run the registry with uvicorn on HUIMIN_HOST:HUIMIN_PORT."""

from services.registry.app import create_registry_app
from services.registry.settings import RegistrySettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_registry_app, RegistrySettings)
