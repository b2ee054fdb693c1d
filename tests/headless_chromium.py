"""A headless Chromium for the tests, from the npm registry, so that CI renders HTML in a real
browser with nothing installed beyond the project's own files.

``@sparticuz/chromium`` ships chrome-headless-shell, brotli-compressed, with the few libraries it
needs beyond glibc (NSS, expat, SwiftShader). Its tarball is pinned by sha256, fetched once over
HTTPS and unpacked into the asset cache (``omnitune.assets.fetch_once``: locked, complete or
absent). Pages are driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``), so
no client package is needed either.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from omnitune.assets import cache_dir, fetch_once, sha256_of
from omnitune.errors import AssetError

TARBALL = "https://registry.npmjs.org/@sparticuz/chromium/-/chromium-153.0.0.tgz"
TARBALL_SHA256 = "20e5656fcdcf4118ede85edfb9d6bb9cc1bbb7ffb8b75622fffbcf36a835c3c0"
ARCHIVES = ("al2023.tar.br", "swiftshader.tar.br", "fonts.tar.br")  # libraries and fonts beside the binary
FLAGS = ("--headless=shell", "--no-sandbox", "--no-zygote", "--single-process", "--in-process-gpu",
         "--disable-webgl", "--no-first-run", "--remote-debugging-pipe")


@pytest.fixture(scope="session")
def headless_chromium() -> Path:
    """The browser binary. Where it cannot be fetched the test is skipped, except under CI
    (``CI=true``), where it fails: CI must render the pages."""
    try:
        return chromium()
    except (OSError, AssetError) as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs the headless browser, which could not be fetched: {error}")
        pytest.skip(f"the headless browser could not be fetched: {error}")


def chromium() -> Path:
    """The browser binary, fetched and unpacked on first use."""
    entry = cache_dir() / "npm" / f"sparticuz-chromium-153.0.0-{TARBALL_SHA256[:12]}"
    return fetch_once(entry, _unpack) / "chromium"


def _unpack(staging: Path) -> None:
    import brotli

    with tempfile.TemporaryDirectory(prefix="omnitune-npm-") as scratch:
        tarball = Path(scratch) / "chromium.tgz"
        with urllib.request.urlopen(TARBALL, timeout=300) as response, open(tarball, "wb") as sink:
            sink.write(response.read())
        if sha256_of(tarball) != TARBALL_SHA256:
            raise AssetError(f"{TARBALL}: sha256 {sha256_of(tarball)} is not the pinned {TARBALL_SHA256}")
        with tarfile.open(tarball) as package:
            binary = package.extractfile("package/bin/chromium.br").read()
            (staging / "chromium").write_bytes(brotli.decompress(binary))
            for name in ARCHIVES:
                inner = brotli.decompress(package.extractfile(f"package/bin/{name}").read())
                with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
                    archive.extractall(staging / "al2023" if name.startswith("al2023") else staging,
                                       filter="data")
    (staging / "chromium").chmod(0o755)


@dataclass
class RenderedPage:
    """What the browser saw: images that did not decode, and every console message or exception."""

    images: int
    broken_images: int
    console: list[str] = field(default_factory=list)


def render(binary: Path, page: Path, timeout: float = 60.0) -> RenderedPage:
    """Open ``page`` in the headless browser, wait for its load event, then count its images
    that did not decode and collect its console messages and uncaught exceptions."""
    with _Browser(binary) as browser:
        session = browser.open_page()
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
        browser.wait_for("Page.loadEventFired", time.monotonic() + timeout)
        counted = browser.call("Runtime.evaluate", {"returnByValue": True, "expression": (
            "[document.images.length, [...document.images].filter("
            "i => !(i.complete && i.naturalWidth > 0)).length]")}, session)
        images, broken = counted["result"]["value"]
        return RenderedPage(images, broken, browser.console())


class _Browser:
    """A browser process spoken to over its DevTools pipe (fd 3: commands in, fd 4: replies out),
    with a fresh profile folder and only its own libraries and fonts."""

    def __init__(self, binary: Path) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="omnitune-chromium-")
        folder = binary.parent
        self.command = [str(binary), *FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"]
        fonts = Path(self.profile.name) / "fonts.conf"  # the package's own points at AWS Lambda's folders
        fonts.write_text(f"<?xml version='1.0'?>\n<fontconfig><dir>{folder / 'fonts'}</dir>"
                         f"<cachedir>{self.profile.name}/fonts-cache</cachedir></fontconfig>\n")
        libraries = f"{folder / 'al2023' / 'lib'}:{folder}"
        self.environment = {"PATH": "/usr/bin:/bin", "HOME": self.profile.name,
                            "FONTCONFIG_FILE": str(fonts), "LD_LIBRARY_PATH": libraries}
        self.events: list[dict[str, Any]] = []
        self.buffer = b""
        self.next_id = 0

    def __enter__(self) -> _Browser:
        commands_in, commands_out = os.pipe()
        replies_in, replies_out = os.pipe()

        def on_pipe_fds() -> None:  # dup first: dup2 onto the same number would keep close-on-exec
            first, second = os.dup(commands_in), os.dup(replies_out)
            os.dup2(first, 3)
            os.dup2(second, 4)

        self.process = subprocess.Popen(self.command, env=self.environment, close_fds=False,
                                        preexec_fn=on_pipe_fds, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_in)
        os.close(replies_out)
        self.writer = os.fdopen(commands_out, "wb", buffering=0)
        self.reader = os.fdopen(replies_in, "rb", buffering=0)
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self._send("Browser.close", {})
            self.process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            self.writer.close()
            self.reader.close()
            self.profile.cleanup()

    def open_page(self) -> str:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", {}, session)
        return session

    def call(self, method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
        ident = self._send(method, params, session)
        while True:
            message = self._receive()
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, deadline: float) -> None:
        while not any(m.get("method") == event for m in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the browser sent no {event}")
            self.events.append(self._receive())

    def console(self) -> list[str]:
        found = []
        for message in self.events:
            params = message.get("params", {})
            if message.get("method") == "Runtime.consoleAPICalled":
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif message.get("method") == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif message.get("method") == "Log.entryAdded":
                found.append(params["entry"]["text"])
        return found

    def _send(self, method: str, params: dict[str, Any], session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.writer.write(json.dumps(message).encode() + b"\0")
        return self.next_id

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            chunk = self.reader.read(1 << 16)
            if not chunk:
                raise EOFError(f"the browser closed its DevTools pipe (exit code {self.process.poll()})")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)
