"""`python -m services.tourism`: run the tourism service on HUIMIN_HOST:HUIMIN_PORT."""

from services.tourism.app import create_tourism_app
from services.tourism.settings import TourismSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_tourism_app, TourismSettings)
