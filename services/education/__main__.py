"""`python -m services.education`: run the education service on HUIMIN_HOST:HUIMIN_PORT."""

from services.education.app import create_education_app
from services.education.settings import EducationSettings
from shared.app import serve

if __name__ == "__main__":
    serve(create_education_app, EducationSettings)
