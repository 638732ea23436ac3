"""Browser tests: Debian's chromium, headless, with every host but 127.0.0.1 unresolvable (so
the page cannot reach any CDN), driven through chromedriver by Selenium, against a real uvicorn
server started by the `loyalgraph` command.

Without chromium these tests skip, unless LOYALGRAPH_REQUIRE_BROWSER=1 (set by .ci/run), which
makes a missing browser a failure."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("LOYALGRAPH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LOYALGRAPH_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED = os.environ.get("LOYALGRAPH_REQUIRE_BROWSER") == "1"
BIN = Path(sys.executable).parent


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def chrome() -> Iterator[object]:
    missing = _browser_missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"LOYALGRAPH_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        # No internet for the page: every name but the loopback fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Server:
    url: str
    api_key: str
    env: dict[str, str]


def loyalgraph(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "loyalgraph"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A migrated, empty service on a free port, with one API key."""
    home = tmp_path_factory.mktemp("browser-home")
    env = {**os.environ, "LOYALGRAPH_HOME": str(home)}
    env.pop("LOYALGRAPH_DATABASE_URL", None)
    loyalgraph(env, "migrate")
    api_key = loyalgraph(env, "apikey", "create", "--app", "browser-test").strip()
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "loyalgraph"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process)
        yield Server(url=f"http://127.0.0.1:{port}", api_key=api_key, env=env)
    finally:
        process.terminate()
        process.wait(timeout=30)
