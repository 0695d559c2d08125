"""A page in headless Chromium (Debian's `chromium`), driven over the Chrome DevTools Protocol.

The browser gets no network: every request goes to a proxy on a closed
loopback port and the page is emulated offline, and each request the page
makes anyway is recorded (a self-contained page makes none but its own
file:, data: and blob: URLs). Console messages, uncaught exceptions and the
browser's log come back with the page's state and a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageResult:
    values: dict[str, Any]  # what each JS expression of `evaluate` gave after the page settled
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # URLs the page asked for, outside LOCAL_SCHEMES
    screenshot: bytes = b""


class _DevTools:
    def __init__(self, url: str) -> None:
        self.socket = connect(url, max_size=None, open_timeout=30)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=max(0.05, end - time.monotonic()))))
            except TimeoutError:
                return

    def close(self) -> None:
        self.socket.close()


def _devtools_url(profile: Path, process: subprocess.Popen, timeout: float = 60) -> str:
    """The page target's websocket, from the port Chromium wrote to DevToolsActivePort."""
    import urllib.request

    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while not active.exists() or not active.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium did not start (exit status {process.poll()})")
        time.sleep(0.1)
    port = active.read_text().split()[0]
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        if time.monotonic() > deadline:
            raise RuntimeError("chromium has no page target")
        time.sleep(0.1)


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
    return errors


def open_page(
    path: Path,
    ready: str,
    evaluate: dict[str, str],
    *,
    width: int = 1280,
    height: int = 900,
    timeout: float = 90,
) -> PageResult:
    """Load `path`, wait until the JS expression `ready` is truthy, evaluate each of `evaluate`,
    take a full-page screenshot."""
    browser = chromium_path()
    if browser is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile_dir:
        profile = Path(profile_dir)
        process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--proxy-server=127.0.0.1:9",  # nothing listens there: no request reaches a network
                "--proxy-bypass-list=<-loopback>",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its singleton socket folder (org.chromium.Chromium.*) is made under TMPDIR and left
            # there after a stop: inside the profile folder, it goes with it.
            env={**os.environ, "TMPDIR": str(profile)},
            start_new_session=True,  # its renderer and helper processes share its process group
        )
        try:
            tools = _DevTools(_devtools_url(profile, process))
            try:
                return _load(tools, path, ready, evaluate, width, height, timeout)
            finally:
                tools.close()
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium and every process it started, before its profile folder is removed:
    a helper still writing there made that removal fail ("Directory not empty") in a test run."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return  # the group is empty
        time.sleep(0.05)


def _load(
    tools: _DevTools, path: Path, ready: str, evaluate: dict[str, str], width: int, height: int, timeout: float
) -> PageResult:
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    tools.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1)
    tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    tools.call("Page.navigate", url=path.resolve().as_uri())
    deadline = time.monotonic() + timeout
    while not tools.call("Runtime.evaluate", expression=f"Boolean({ready})", returnByValue=True)["result"]["value"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page never got ready ({ready}) in {timeout:.0f}s")
        tools.drain(0.2)
    tools.drain(0.5)  # late console messages
    values = {
        name: tools.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")
        for name, expression in evaluate.items()
    }
    metrics = tools.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = tools.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
    )
    requests = [
        e["params"]["request"]["url"]
        for e in tools.events
        if e.get("method") == "Network.requestWillBeSent"
        and not e["params"]["request"]["url"].startswith(LOCAL_SCHEMES)
    ]
    return PageResult(values, _console_errors(tools.events), requests, base64.b64decode(shot["data"]))
