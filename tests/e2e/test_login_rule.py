"""alb-sim's proxy decides who a request is, as a real ALB does for browsers
and as before for curl (alb-sim/README.md, "Who a request is"):

1. `x-alb-sim-user: NAME` wins;
2. else the session cookie `AWSELBAuthSessionCookie-0` of a signed-in browser;
   a cookie of no live session: 302 to sign in (navigation) or 401;
3. else a browser navigation (GET/HEAD accepting text/html): 302 to sign in;
4. else the default identity (curl keeps working without anything).

The real binary in front of the suite's echo upstream (no Envoy needed): what
the upstream receives shows who the stand-in signed the token for.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
from collections.abc import Iterator

import pytest

from envoykit.client import Response, http_request
from envoykit.echo import EchoServer
from envoykit.paths import ALB_SIM_BIN, BUILD_HINT
from envoykit.wait import wait_until
from tokens import ARN

ALB_SIM = ALB_SIM_BIN
COOKIE = "AWSELBAuthSessionCookie-0"
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module")
def proxy(echo: EchoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not ALB_SIM.exists():
        pytest.fail(f"{ALB_SIM} not built: {BUILD_HINT}")
    work = tmp_path_factory.mktemp("alb-sim-login")
    log = work / "alb-sim.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(ALB_SIM), "run", "--dir", str(work / "keys"), "--keys-listen", "127.0.0.1:0",
             "--proxy-listen", "127.0.0.1:0", "--upstream", f"http://127.0.0.1:{echo.port}", "--signer", ARN],
            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        banner = wait_until(lambda: re.search(r"proxy at http://127\.0\.0\.1:(\d+)", log.read_text()), 30,
                            what="alb-sim proxy banner")  # fmt: skip
        yield int(banner.group(1))
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, log.read_text()


def who(r: Response) -> str | None:
    """The username the forwarded token was signed for (None: no token forwarded)."""
    assert r.status == 200, (r.status, r.body[:300])
    token = r.upstream.get("x-amzn-oidc-data")
    if token is None:
        return None
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["username"]


def header(r: Response, name: str) -> list[str]:
    return [v for k, v in r.headers if k == name]


def sign_in(port: int, user: str, redirect: str = "/", extra: dict[str, str] | None = None) -> Response:
    """POSTs the sign-in form as a browser would (http_request sends no body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            **BROWSER,
            **(extra or {}),
        }
        c.request(
            "POST",
            "/oauth2/sign_in",
            body=f"user={user}&redirect={redirect}",
            headers=headers,
        )
        r = c.getresponse()
        return Response(r.status, r.read(), [(k.lower(), v) for k, v in r.getheaders()])
    finally:
        c.close()


def session_of(r: Response) -> str:
    (set_cookie,) = header(r, "set-cookie")
    m = re.fullmatch(rf"{COOKIE}=([0-9a-f]{{64}}); HttpOnly; SameSite=Lax; Path=/", set_cookie)
    assert m, set_cookie
    return m.group(1)


def test_curl_keeps_the_default_identity(proxy: int, echo: EchoServer) -> None:
    assert who(http_request(proxy, "/plain")) == "alice"
    assert who(http_request(proxy, "/plain", {"accept": "*/*"})) == "alice"
    assert who(http_request(proxy, "/plain", {"x-alb-sim-user": "bob"})) == "bob"
    # A browser's POST (not a navigation to a page) is not sent to sign in either.
    assert who(http_request(proxy, "/form", {**BROWSER, "content-length": "0"}, method="POST")) == "alice"
    assert who(http_request(proxy, "/plain", {"x-alb-sim-user": "anonymous"})) is None


def test_browser_without_session_is_sent_to_sign_in(proxy: int, echo: EchoServer) -> None:
    r = http_request(proxy, "/private/page?x=1", BROWSER)
    assert r.status == 302
    assert header(r, "location") == ["/oauth2/sign_in?redirect=%2Fprivate%2Fpage%3Fx%3D1"]
    assert echo.hits("/private/page?x=1") == 0
    # The header still wins for a browser-like request (tools that send Accept: text/html).
    assert who(http_request(proxy, "/h", {**BROWSER, "x-alb-sim-user": "carol"})) == "carol"


def test_sign_in_page_lists_the_identities(proxy: int) -> None:
    r = http_request(proxy, "/oauth2/sign_in?redirect=%2Fwhoami", BROWSER)
    assert r.status == 200
    page = r.body.decode()
    for name in ("alice", "bob", "carol"):
        assert f'<button type="submit" name="user" value="{name}" id="sign-in-{name}">' in page
    assert '<input type="hidden" name="redirect" value="/whoami">' in page
    assert "Alice Archer · alice@example.com · admin,staff" in page
    assert "Carol Cooper · carol@example.com · staff" in page  # no `name` claim: given + family
    assert dict(r.headers)["x-frame-options"] == "DENY"
    # Where to go back to is never another site.
    evil = http_request(proxy, "/oauth2/sign_in?redirect=%2F%2Fevil.example%2F", BROWSER).body.decode()
    assert '<input type="hidden" name="redirect" value="/">' in evil


def test_session_identity_logout(proxy: int, echo: EchoServer) -> None:
    r = sign_in(proxy, "carol", "%2Fback%3Fq%3D1")
    assert r.status == 302 and header(r, "location") == ["/back?q=1"]
    sid = session_of(r)
    with_cookie = {**BROWSER, "cookie": f"theme=dark; {COOKIE}={sid}"}
    page = http_request(proxy, "/back?q=1", with_cookie)
    assert who(page) == "carol"
    # The upstream gets the app's cookies, never the stand-in's session.
    assert page.upstream.get("cookie") == "theme=dark"
    # A non-navigation request of the same browser is carol too; the header still wins.
    assert who(http_request(proxy, "/api", {"cookie": f"{COOKIE}={sid}"})) == "carol"
    assert who(http_request(proxy, "/api", {"cookie": f"{COOKIE}={sid}", "x-alb-sim-user": "bob"})) == "bob"

    out = http_request(proxy, "/logout", with_cookie)
    assert out.status == 302 and header(out, "location") == ["/oauth2/sign_in"]
    (expire,) = header(out, "set-cookie")
    assert expire.startswith(f"{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"), expire
    # The old cookie is dead on the server: no silent fallback to the default identity.
    before = echo.total()
    stale = http_request(proxy, "/api", {"cookie": f"{COOKIE}={sid}"})
    assert stale.status == 401 and stale.body == b"alb-sim: session ended; sign in again\n"
    assert header(stale, "set-cookie")[0].startswith(f"{COOKIE}=;")
    nav = http_request(proxy, "/", with_cookie)
    assert nav.status == 302 and header(nav, "location") == ["/oauth2/sign_in?redirect=%2F"]
    assert echo.total() == before


def test_a_forged_cookie_is_no_session(proxy: int, echo: EchoServer) -> None:
    before = echo.total()
    r = http_request(proxy, "/api", {"cookie": f"{COOKIE}={'0' * 64}"})
    assert r.status == 401
    assert echo.total() == before


def test_sign_in_form_is_checked(proxy: int) -> None:
    assert sign_in(proxy, "mallory").status == 400
    assert sign_in(proxy, "anonymous").status == 400
    assert sign_in(proxy, "alice", extra={"origin": "http://evil.example"}).status == 403
    same = sign_in(proxy, "alice", extra={"origin": f"http://127.0.0.1:{proxy}"})
    assert same.status == 302
    # An open redirect through the form is refused: it goes to /.
    away = sign_in(proxy, "alice", "%2F%2Fevil.example%2F")
    assert header(away, "location") == ["/"]
    assert http_request(proxy, "/oauth2/sign_in", method="DELETE").status == 405
