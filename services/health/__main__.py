"""`python -m services.health`: run the FHIR server with uvicorn on HUIMIN_HOST:HUIMIN_PORT."""

from services.health.app import create_health_app
from services.health.settings import HealthSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_health_app, HealthSettings)
