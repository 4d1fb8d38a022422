"""A real Label Studio server for the integration test, started in the background as soon as the
test run knows it will need one (tests/conftest.py), so its install and first start overlap the rest
of the suite instead of holding it up.

Label Studio lives in its own virtualenv (``var/labelstudio-venv``, ``scripts/labelstudio.sh``): it
pins its own Django/DRF. A cold first start spends most of its minute or more applying Label Studio's
migrations to a new SQLite database, so the first run keeps a migrated, empty data folder
(``var/labelstudio-template-<version>``) and every later start copies it: the server then only
creates its admin user and begins serving.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "var" / "labelstudio-venv"
LS_BIN = VENV / "bin" / "label-studio"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
USERNAME = "ls-admin@example.com"
PASSWORD = "ls-admin-pw-123"
READY_TIMEOUT_S = 600  # a cold install plus first start on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "LABEL_STUDIO_USERNAME": USERNAME,
        "LABEL_STUDIO_PASSWORD": PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LATEST_VERSION_CHECK": "false",  # no call to pypi.org at start
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # ours must not leak into Label Studio's Django
    env.pop("DATABASE_URL", None)
    return env


class LabelStudioServer:
    """One Label Studio process on a free loopback port with its data in a private folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="labelstudio-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.error: BaseException | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._launch, name="label-studio-start", daemon=True)

    def start_in_background(self) -> LabelStudioServer:
        self._thread.start()
        return self

    def _launch(self) -> None:
        try:
            if not LS_BIN.exists():
                subprocess.run(
                    ["bash", str(ROOT / "scripts" / "labelstudio.sh")],
                    check=True,
                    timeout=1200,
                    stdout=subprocess.DEVNULL,
                )
            template = self._migrated_template()
            with self._lock:  # stop() waits for this: nothing is copied or started after it
                if self._stopped:
                    return
                data = self.folder / "data"
                shutil.copytree(template, data)
                self.process = subprocess.Popen(
                    [
                        str(LS_BIN),
                        "start",
                        "--no-browser",
                        "--data-dir",
                        str(data),
                        "--internal-host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                        "--enable-legacy-api-token",
                        "--username",
                        USERNAME,
                        "--password",
                        PASSWORD,
                        "--user-token",
                        TOKEN,
                    ],  # fmt: skip
                    cwd=self.folder,
                    env=_env(),
                    stdout=self.log_path.open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except BaseException as exc:  # reported by wait_ready
            self.error = exc

    def _migrated_template(self) -> Path:
        """An empty data folder with every Label Studio migration applied, made once per install
        (``label-studio version`` applies the migrations and exits without serving)."""
        version = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", "import label_studio; print(label_studio.__version__)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        template = ROOT / "var" / f"labelstudio-template-{version}"
        if not template.exists():
            template.parent.mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=".labelstudio-building-", dir=template.parent))
            with self.log_path.open("ab") as log:
                subprocess.run(
                    [str(LS_BIN), "version", "--data-dir", str(building)],
                    cwd=self.folder,
                    env=_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=1200,
                )
            try:
                building.rename(template)  # whole or not at all; a concurrent run may have won
            except OSError:
                shutil.rmtree(building, ignore_errors=True)
        return template

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> str:
        """Block until the API answers with the admin's token; return the URL, or raise with the log."""
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self.error is not None:
            raise RuntimeError(f"Label Studio could not be started: {self.error!r}\n{self._log_tail()}")
        if self.process is None:
            raise RuntimeError(f"Label Studio was not started within {timeout:.0f} s\n{self._log_tail()}")
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.process.returncode}\n{self._log_tail()}")
            try:
                req = urllib.request.Request(  # noqa: S310 - local test server
                    f"{self.url}/api/projects", headers={"Authorization": f"Token {TOKEN}"}
                )
                with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local test server
                    if resp.status == 200:
                        return self.url
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Label Studio did not answer within {timeout:.0f} s\n{self._log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
