"""The wall's forms, cookie and every answer's headers, as an attacker's page would meet them.

Another site can make a signed-in duty chief's browser post to the wall, frame it, or read
what its cookie says; none of that may sign anybody in or out, show the wall inside another
page, or give away a token. The bearer-token API is not cookie-authenticated and keeps
working without form tokens.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import subprocess
import sys
import time
import zlib
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from browsers import browser_fixture, chromium, record_problems  # noqa: F401
from flask.sessions import SecureCookieSessionInterface
from live_server import running_server
from maps_city import build_city, form_token, wall_sign_in

from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.people.tokens import decode_token

PASSWORD = "pw-secret-123"
EVIL = {"Origin": "https://evil.example", "Referer": "https://evil.example/prize.html"}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@pytest.fixture
def chief(app_ctx, make_user):
    city = build_city()
    return make_user("duty_chief", username="chief", city_id=city.city.id, password=PASSWORD)


def session_cookie(response) -> str | None:
    """The value of the ``session`` cookie the answer sets, if it sets one."""
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == "session":
            return rest.split(";")[0]
    return None


def set_cookie_header(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))


def readable_secrets(cookie: str) -> list[str]:
    """Whatever a thief could read from a cookie value: JWTs, token fields, JSON."""
    found = []
    candidates = [cookie, *cookie.lstrip(".").split(".")]
    for part in candidates:
        with contextlib.suppress(jwt.PyJWTError):
            found.append(json.dumps(jwt.decode(part, options={"verify_signature": False})))
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            continue
        for data in (raw, _inflated(raw)):
            if data and (b"eyJ" in data or b"refresh" in data or b"wall_tokens" in data):
                found.append(data.decode("latin-1"))
    return found


def _inflated(raw: bytes) -> bytes | None:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return None


def signed_in(client) -> bool:
    return client.get("/maps/token").status_code == 200


# --- forms: only the wall's own pages can post them ------------------------------------------

def test_a_sign_in_posted_by_another_site_is_refused_and_signs_nobody_in(client, chief):
    forged = client.post("/wall/login", headers=EVIL,
                         data={"username": "chief", "password": PASSWORD})

    assert forged.status_code == 400
    assert "表单已过期或来自其他网站" in forged.text
    assert session_cookie(forged) is None
    assert not signed_in(client)


def test_a_form_token_taken_from_another_browser_does_not_sign_in(app, chief):
    attacker, victim = app.test_client(), app.test_client()
    token = form_token(attacker)  # valid, but for the attacker's own session

    forged = victim.post("/wall/login", headers=EVIL,
                         data={"username": "chief", "password": PASSWORD, "csrf_token": token})
    made_up = victim.post("/wall/login", data={"username": "chief", "password": PASSWORD,
                                                "csrf_token": "not-a-token"})

    assert forged.status_code == 400 and made_up.status_code == 400
    assert session_cookie(forged) is None and session_cookie(made_up) is None
    assert not signed_in(victim) and not signed_in(attacker)


def test_a_sign_out_posted_by_another_site_is_refused_and_the_wall_stays_signed_in(client,
                                                                                   chief):
    assert wall_sign_in(client, "chief", PASSWORD).status_code == 302
    with client.session_transaction() as session:
        tokens = dict(session["wall_tokens"])

    forged = client.post("/wall/logout", headers=EVIL)

    assert forged.status_code == 400
    assert "表单已过期或来自其他网站" in forged.text
    assert signed_in(client)
    decode_token(tokens["refresh"], "refresh")  # not revoked

    own = client.post("/wall/logout", data={"csrf_token": form_token(client, "/wall")})
    assert own.status_code == 302
    assert not signed_in(client)


def test_the_bearer_token_api_needs_no_form_token_and_ignores_the_walls_cookie(client, chief):
    assert wall_sign_in(client, "chief", PASSWORD).status_code == 302
    assert signed_in(client)

    # The wall's cookie alone opens no API door: the API reads only Authorization.
    me = client.get("/api/v1/me")
    assert me.status_code == 401 and me.json["error"]["code"] == "token_missing"

    tokens = client.post("/api/v1/auth/token", json={"username": "chief", "password": PASSWORD})
    assert tokens.status_code == 200
    me = client.get("/api/v1/me",
                    headers={"Authorization": f"Bearer {tokens.json['access_token']}"})
    assert me.status_code == 200 and me.json["username"] == "chief"


# --- the cookie --------------------------------------------------------------------------------

def test_the_cookie_is_httponly_same_site_and_gives_away_no_token(client, chief):
    response = wall_sign_in(client, "chief", PASSWORD)
    header = set_cookie_header(response)
    value = session_cookie(response)
    with client.session_transaction() as session:
        tokens = session["wall_tokens"]

    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header  # plain HTTP, no trusted proxy saying otherwise
    assert tokens["refresh"] not in value and tokens["access"] not in value
    assert readable_secrets(value) == []
    # Flask's default, signed-only cookie would have given the tokens away.
    legacy = SecureCookieSessionInterface().get_signing_serializer(client.application)
    assert readable_secrets(legacy.dumps({"wall_tokens": tokens}))


def test_the_cookie_lives_hours_not_a_month(app, client, chief):
    header = set_cookie_header(wall_sign_in(client, "chief", PASSWORD))

    expires = re.search(r"Expires=([^;]+)", header).group(1)
    left = time.mktime(time.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT")) - time.mktime(
        time.gmtime())
    assert abs(left - app.permanent_session_lifetime.total_seconds()) < 60
    assert app.permanent_session_lifetime == timedelta(hours=8)


def test_a_wall_in_use_stays_signed_in_and_an_idle_one_is_signed_out(app, client, chief,
                                                                   monkeypatch):
    monkeypatch.setitem(app.config, "PERMANENT_SESSION_LIFETIME", timedelta(seconds=3))
    wall_sign_in(client, "chief", PASSWORD)
    for _ in range(5):  # longer than the idle limit in all, one request a second
        time.sleep(1)
        answer = client.get("/maps/token")
        assert answer.status_code == 200
        cookie = session_cookie(answer)
        assert cookie  # sealed again at every request: the limit slides

    time.sleep(4.2)
    # The browser would drop the cookie; the server refuses it even when it is replayed.
    replayed = app.test_client(use_cookies=False).get(
        "/maps/token", headers={"Cookie": f"session={cookie}"})
    assert replayed.status_code == 401 and replayed.json["error"]["code"] == "token_missing"


# An app behind one trusted proxy is built in its own process (extensions keep one object per
# process) on the same database, and asked what a browser behind nginx would ask.
PROXIED_CLIENT = """
import json, re, sys, tempfile
from gridmgr import create_app
url, proxies = sys.argv[1], int(sys.argv[2])
app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                  "GRIDMGR_HOME": tempfile.mkdtemp(), "RATELIMIT_ENABLED": False,
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                  "GRIDMGR_TRUSTED_PROXIES": proxies})
client = app.test_client(use_cookies=False)
https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "wall.example"}
form = client.get("/wall/login", headers=https)
cookie = form.headers["Set-Cookie"].split(";")[0]
token = re.search('name="csrf_token" value="([^"]+)"', form.text).group(1)
answer = client.post("/wall/login", data={"username": "chief", "password": sys.argv[3],
                                          "csrf_token": token},
                     headers={**https, "Cookie": cookie,
                              "Referer": "https://wall.example/wall/login"})
print(json.dumps([answer.status_code, answer.headers.getlist("Set-Cookie")]))
"""


def _sign_in_through_proxy(database_url: str, trusted_proxies: int) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-c", PROXIED_CLIENT, database_url,
                           str(trusted_proxies), PASSWORD], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    status, cookies = json.loads(done.stdout.strip().splitlines()[-1])
    return status, next((c for c in cookies if c.startswith("session=")), "")


def test_behind_a_trusted_https_proxy_the_cookie_is_secure(database_url, chief):
    status, cookie = _sign_in_through_proxy(database_url, trusted_proxies=1)
    assert status == 302
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_an_untrusted_forwarded_proto_does_not_make_the_cookie_secure(client, chief):
    token = form_token(client)
    response = client.post("/wall/login", headers={"X-Forwarded-Proto": "https"},
                           data={"username": "chief", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert "Secure" not in set_cookie_header(response)


# --- headers on every answer -------------------------------------------------------------------

def assert_protected(response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.getlist(name) == [value], (response.request.path, name)
    [policy] = response.headers.getlist("Content-Security-Policy")
    assert "frame-ancestors 'none'" in policy, response.request.path


def test_pages_api_answers_and_errors_all_carry_the_security_headers(client, chief,
                                                                     auth_headers):
    anonymous = client.get("/wall")
    login = client.get("/wall/login")
    wall_sign_in(client, "chief", PASSWORD)
    answers = {
        "redirect": anonymous,
        "sign-in page": login,
        "wall": client.get("/wall"),
        "feed": client.get("/maps/feeds/stats"),
        "static": client.get("/maps/static/wall.js"),
        "api": client.get("/api/v1/me", headers=auth_headers(chief)),
        "api 401": client.get("/api/v1/me"),
        "api 404": client.get("/api/v1/no-such-thing"),
        "api 422": client.post("/api/v1/reports", json={"lon": "east"}),
        "bad tile": client.get("/maps/tiles/grids/x/0/0.pbf"),
        "refused form": client.post("/wall/logout"),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {"redirect": 302, "sign-in page": 200, "wall": 200, "feed": 200,
                        "static": 200, "api": 200, "api 401": 401, "api 404": 404,
                        "api 422": 422, "bad tile": 400, "refused form": 400}
    for response in answers.values():
        assert_protected(response)
        response.close()


def test_the_walls_policy_runs_only_its_own_inline_scripts(client, chief):
    wall_sign_in(client, "chief", PASSWORD)
    first, second = client.get("/wall"), client.get("/wall")
    policy = first.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", policy).group(1).split()

    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    nonce = next(s for s in script_src if s.startswith("'nonce-"))[7:-1]
    assert len(nonce) >= 16
    assert nonce not in second.headers["Content-Security-Policy"]  # new for every answer
    tags = re.findall(r"<script\b[^>]*>", first.text)
    inline = [t for t in tags if "src=" not in t and "application/json" not in t]
    assert len(inline) >= 2  # folium's set-up and map scripts
    assert all(f'nonce="{nonce}"' in t for t in inline)
    assert "form-action 'self'" in policy and "object-src 'none'" in policy


def test_a_city_name_with_markup_cannot_smuggle_a_script_onto_the_wall(client, chief):
    city = db.session.get(City, chief.city_id)
    city.name = '</title><script>alert("name")</script>'
    db.session.commit()
    wall_sign_in(client, "chief", PASSWORD)

    page = client.get("/wall").text

    assert 'alert("name")' not in page
    assert '<script nonce' not in page.split("<title>")[1].split("</title>")[0]
    config = re.search(r'<script id="wall-config" type="application/json">(.*?)</script>',
                       page, re.S).group(1)
    assert json.loads(config)["city"]["name"] == city.name


# --- in a real browser -------------------------------------------------------------------------

WATCH_VIOLATIONS = """window.__violations = [];
document.addEventListener("securitypolicyviolation", e =>
    window.__violations.push(e.violatedDirective + " " + e.blockedURI));"""


@chromium
def test_the_wall_renders_in_chromium_without_a_single_policy_violation(app, tmp_path, chief,
                                                                        browser):
    with running_server(app, tmp_path / "server") as server:
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.add_init_script(WATCH_VIOLATIONS)
        errors = record_problems(page, [])

        page.goto(server.url + "/wall/login")
        page.fill("input[name=username]", "chief")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-wall-ready='1']", state="attached", timeout=20_000)
        page.wait_for_timeout(500)
        violations = page.evaluate("window.__violations.slice()")
        errors_while_rendering = list(errors)
        framed = page.evaluate("document.querySelectorAll('.leaflet-container').length")

        # The policy is live: a script slipped into the page afterwards does not run.
        page.evaluate("""() => { const s = document.createElement("script");
            s.textContent = "window.__smuggled = true"; document.body.appendChild(s); }""")
        page.wait_for_timeout(200)
        smuggled = page.evaluate("window.__smuggled === true")
        caught = page.evaluate("window.__violations.length")

        # Signing out through the page's own form works; the wall then asks for a sign-in.
        page.click("#wall-panel form button[type=submit]")
        page.wait_for_url("**/wall/login", timeout=5_000)
        page.goto(server.url + "/wall")
        after = page.url
        page.context.close()

    assert violations == [] and errors_while_rendering == []
    assert framed == 1
    assert not smuggled and caught == 1
    assert "/wall/login" in after
