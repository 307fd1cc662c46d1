"""Checks of the deployment files: the Helm chart, the compose file and the Dockerfile."""
