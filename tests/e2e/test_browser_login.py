"""The demo in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) signs in on the stand-in's sign-in page as
alice, sees her identity on the demo page, opens the admin area (the page
names the rule that let her in), signs out and is back at sign-in.

The whole `make demo` topology runs (scripts/demo.py on free ports: alb-sim,
Envoy with the filter, the user service, the demo upstream). A screenshot of
the signed-in page goes to tests/e2e/out/demo.png; with ALB_OIDC_SCREENSHOT=PATH
(`make screenshot`: docs/demo.png) it is also written there.

Without chromium or chromedriver the test is skipped (a failure under
ALB_OIDC_NO_SKIP=1). Selenium is given both binaries, so Selenium Manager never
looks for (or downloads) a browser or driver.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from requires import missing
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from envoykit.client import http_request
from envoykit.paths import ALB_SIM_BIN, BUILD_HINT, ENVOY_BIN, REPO, USER_SERVICE_BIN
from envoykit.wait import free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUT = Path(__file__).resolve().parent / "out"
COOKIE = "AWSELBAuthSessionCookie-0"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,860",
]
PORT_VARS = ["DEMO_PROXY_PORT", "DEMO_ENVOY_PORT", "DEMO_ADMIN_PORT", "DEMO_KEYS_PORT", "DEMO_USERS_PORT",
             "DEMO_UPSTREAM_PORT"]  # fmt: skip
BINARIES = [ALB_SIM_BIN, USER_SERVICE_BIN]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not tool.exists():
            missing(f"{tool} is not installed (Debian packages chromium, chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def demo(wasm: Path, tmp_path: Path) -> Iterator[int]:
    """scripts/demo.py (interactive mode) on free ports; yields the stand-in's port."""
    for b in BINARIES:
        if not b.exists():
            pytest.fail(f"{b} not built: {BUILD_HINT}")
    ports: set[int] = set()
    while len(ports) < len(PORT_VARS):
        ports.add(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    env.update(dict(zip(PORT_VARS, map(str, sorted(ports)), strict=True)))
    env.update(
        DEMO_RUN_DIR=str(tmp_path / "run"),
        ALB_OIDC_WASM=str(wasm),
        ALB_OIDC_ENVOY=str(ENVOY_BIN),
        ALB_OIDC_ALB_SIM=str(ALB_SIM_BIN),
        ALB_OIDC_USER_SERVICE=str(USER_SERVICE_BIN),
    )
    log = tmp_path / "demo.out"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-u", "-m", "scripts.demo"], env=env, cwd=str(REPO), stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until(
            lambda: "Press Ctrl-C" in log.read_text() or proc.poll() is not None,
            120,
            what="demo banner",
        )
        assert proc.poll() is None, log.read_text()
        yield int(env["DEMO_PROXY_PORT"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert rc == 0, log.read_text()


def text_of(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def on_sign_in_page(driver: WebDriver, base: str) -> bool:
    return driver.title == "Sign in · alb-sim" and driver.current_url.startswith(f"{base}/oauth2/sign_in")


def test_sign_in_as_alice_and_out(browser: WebDriver, demo: int) -> None:
    d = browser
    base = f"http://127.0.0.1:{demo}"
    d.get(f"{base}/")
    wait_until(lambda: on_sign_in_page(d, base), 15, what="the sign-in page")
    assert d.current_url == f"{base}/oauth2/sign_in?redirect=%2F"
    assert d.get_cookie(COOKIE) is None
    OUT.mkdir(exist_ok=True)
    d.save_screenshot(str(OUT / "sign-in.png"))
    names = [b.get_attribute("value") for b in d.find_elements(By.CSS_SELECTOR, "button[name=user]")]
    assert names == ["alice", "bob", "carol"]

    d.find_element(By.ID, "sign-in-alice").click()
    wait_until(lambda: d.current_url == f"{base}/" and d.find_elements(By.ID, "x-auth-user"), 15,
               what="the demo page after signing in")  # fmt: skip
    # What the app behind Envoy saw: the filter verified alice's token; the user service knows her.
    assert text_of(d, "#x-auth-user") == "alice"
    assert re.fullmatch(r"\d+", text_of(d, "#x-auth-user-id"))
    assert text_of(d, "#x-auth-groups") == "admin"  # the access token's cognito:groups
    cookie = d.get_cookie(COOKIE)
    assert cookie is not None and re.fullmatch(r"[0-9a-f]{64}", cookie["value"])
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert d.execute_script("return document.cookie") == ""
    # The same session on another page.
    d.get(f"{base}/whoami")
    assert '"x-auth-user": "alice"' in d.page_source
    d.get(f"{base}/")
    wait_until(lambda: d.find_elements(By.ID, "x-auth-user"), 15, what="the demo page")
    shot = OUT / "demo.png"
    assert d.save_screenshot(str(shot))
    if target := os.environ.get("ALB_OIDC_SCREENSHOT"):
        shutil.copyfile(shot, REPO / target)

    # The admin area (envoy/demo.yaml: rule admin, group admin): alice gets in, and
    # the page names the rule that let her in.
    d.get(f"{base}/admin")
    wait_until(lambda: d.find_elements(By.ID, "rule"), 15, what="the demo page of /admin")
    assert text_of(d, "#rule") == "admin"
    assert text_of(d, "#x-auth-user") == "alice"

    d.get(f"{base}/logout")
    wait_until(lambda: on_sign_in_page(d, base), 15, what="the sign-in page after logout")
    assert d.get_cookie(COOKIE) is None
    d.get(f"{base}/")
    wait_until(lambda: on_sign_in_page(d, base), 15, what="the sign-in page, not alice's")
    assert not d.find_elements(By.ID, "x-auth-user")
    # The session is gone on the server too: its cookie, replayed, is refused.
    replay = http_request(demo, "/whoami", {"cookie": f"{COOKIE}={cookie['value']}"})
    assert replay.status == 401
