"""A real GeoReport v2 client library from PyPI (``georeport``) talks to the running server,
in JSON and in XML, as a city portal would."""

from __future__ import annotations

import threading

import pytest
import requests
from georeport import GeoReport
from open311_world import IN_WEST, build_world
from werkzeug.serving import make_server

# When a report may be published is the privacy sweep's story (test_privacy_sweep.py).
pytestmark = pytest.mark.usefixtures("publish_at_once")


@pytest.fixture
def server(app, app_ctx):
    """The app served over HTTP on a free port for the length of one test."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/open311/v2"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_georeport_client_lists_services_files_and_follows_a_request(server, fmt):
    world = build_world()
    client = GeoReport(server, jurisdiction="dongcheng", api_key=world.api_key,
                       output_format=fmt)

    services = client.get_service_list()
    assert {s["service_code"] for s in services} == {"C9801", "E9901"}
    definition = client.get_service_definition("E9901")
    attributes = definition["attributes"]
    if fmt == "xml":  # xmltodict keeps the <attributes><attribute> nesting
        attributes = attributes["attribute"]
    assert [a["code"] for a in attributes] == ["SIZE", "BLOCKING", "GIRTH"]

    # georeport reads only; the POST goes over plain HTTP as any client would send it.
    with requests.post(f"{server}/requests.{fmt}", data={
            "api_key": world.api_key, "jurisdiction_id": "dongcheng", "service_code": "E9901",
            "lat": IN_WEST[1], "long": IN_WEST[0], "attribute[SIZE]": "large",
            "description": "A plane tree fell across the lane."}, timeout=10) as filed:
        assert filed.status_code == 200, filed.text
    code = client.get_service_requests(service_code="E9901", status="open")
    if fmt == "xml":  # one request: xmltodict gives the element, not a list
        code = [code]
    assert [r["description"] for r in code] == ["A plane tree fell across the lane."]
    service_request_id = code[0]["service_request_id"]

    one = client.get_service_request(service_request_id)
    assert one["service_request_id"] == service_request_id
    assert one["status"] == "open" and one["service_code"] == "E9901"


def test_the_client_sees_refusals_as_http_errors(server):
    build_world()
    client = GeoReport(server, output_format="json")
    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_definition("NOPE")
    assert refused.value.response.status_code == 404
    assert refused.value.response.json()[0]["code"] == 404
    refused.value.response.close()
