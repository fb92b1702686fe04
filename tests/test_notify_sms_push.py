"""Stories of messages by SMS through a city's HTTP gateway and by Web Push, each to a stub
server on loopback started by the test."""

from __future__ import annotations

import base64
import json
import os

import jwt
import pytest
from cityfixtures import city_fixture  # noqa: F401
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from outbound_servers import HttpReceiver
from sqlalchemy import text
from test_cases_loop import step

from gridmgr.extensions import db
from gridmgr.notify import engine


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def deliver(passes: int = 10) -> None:
    for _ in range(passes):
        if engine.run_once() == 0:
            return


def verify_and_file(client, auth_headers, make_user, city, case_id):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief", region_code="110105")
    lon, lat = city.centre(0)
    assert step(client, auth_headers(inspector), case_id, "verify", lon=lon,
                lat=lat).status_code == 200
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200


def test_a_reporter_who_left_a_phone_number_gets_an_sms_in_the_gateways_shape(
        client, city, make_user, auth_headers, app, monkeypatch):
    gateway = HttpReceiver()
    monkeypatch.setitem(app.config, "GRIDMGR_SMS_GATEWAY_URL", gateway.url)
    monkeypatch.setitem(app.config, "GRIDMGR_SMS_BODY_TEMPLATE",
                        '{"mobile": "{to}", "content": "{text}", "sign": "城管"}')
    lon, lat = city.centre(0)
    answer = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "sms-1",
        "contact_phone": "13800000000", "description": 'a "quoted" remark'})
    case_id = answer.get_json()["case"]["id"]
    verify_and_file(client, auth_headers, make_user, city, case_id)
    deliver()
    [(headers, body)] = gateway.accepted
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert sent["mobile"] == "13800000000" and sent["sign"] == "城管"
    assert answer.get_json()["case"]["code"] in sent["content"]
    assert "已立案" in sent["content"]
    gateway.close()


def test_a_signed_in_citizen_gets_a_web_push_signed_with_the_citys_vapid_key(
        client, city, make_user, auth_headers):
    push_service = HttpReceiver(answer=lambda n, headers, body: 201)
    citizen = make_user("citizen")
    browser_key = ec.generate_private_key(ec.SECP256R1())
    p256dh = b64(browser_key.public_key().public_bytes(Encoding.X962,
                                                       PublicFormat.UncompressedPoint))
    key = client.get("/api/v1/notify/push/key").get_json()["application_server_key"]
    subscribed = client.post("/api/v1/notify/push/subscriptions",
                             headers=auth_headers(citizen), json={
                                 "endpoint": push_service.url + "/sub-1",
                                 "keys": {"p256dh": p256dh, "auth": b64(os.urandom(16))},
                                 "language": "en"})
    assert subscribed.status_code == 201, subscribed.get_json()
    lon, lat = city.centre(0)
    case_id = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "push-1",
        "attributes": {"language": "en"}}).get_json()["case"]["id"]
    verify_and_file(client, auth_headers, make_user, city, case_id)
    deliver()

    [(headers, body)] = push_service.accepted
    headers = {k.lower(): v for k, v in headers.items()}
    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == key
    raw = base64.urlsafe_b64decode(fields["k"] + "=" * (-len(fields["k"]) % 4))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    claims = jwt.decode(fields["t"], public, algorithms=["ES256"],
                        audience=push_service.url.rsplit("/hook", 1)[0])
    assert claims["sub"].startswith("mailto:")
    assert headers["content-encoding"] == "aes128gcm" and len(body) > 0
    push_service.close()


@pytest.mark.parametrize("endpoint", ["ftp://push.example/x", "http://push.example/x", ""])
def test_a_push_subscription_to_no_https_address_is_refused_and_not_kept(
        client, make_user, auth_headers, endpoint):
    citizen = make_user("citizen")
    answer = client.post("/api/v1/notify/push/subscriptions", headers=auth_headers(citizen),
                         json={"endpoint": endpoint, "keys": {"p256dh": "x", "auth": "y"}})
    assert answer.status_code == 422
    assert db.session.scalar(text("SELECT count(*) FROM push_subscriptions")) == 0
