"""tools/nginx.py: nginx from Debian's packages, started on a free port (the gateway bench)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures import started
from tools.nginx import NginxError, NginxServer


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    body = "location / { default_type text/plain; return 200 'static'; }"
    yield from started(NginxServer(tmp_path / "nginx", body), "nginx", NginxError)


def test_nginx_serves_its_configuration_and_stops(nginx: NginxServer):
    response = httpx.get(nginx.url + "/anything", timeout=10)
    assert response.status_code == 200
    assert response.text == "static"
    assert (nginx.log_path.parent / "nginx.conf").read_text().count("worker_processes 1;") == 1
    nginx.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(nginx.url + "/anything", timeout=2)
