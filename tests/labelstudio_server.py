"""A real Label Studio server for the integration test, started in the background as soon as the
test run knows it will need one (tests/conftest.py), so its install and first start overlap the rest
of the suite instead of holding it up.

Label Studio lives in its own virtualenv (``var/labelstudio-venv``, ``scripts/labelstudio.sh``): it
pins its own Django/DRF. A cold first start spends most of its minute or more applying Label Studio's
migrations to a new SQLite database, so the first run keeps a migrated, empty data folder
(``var/labelstudio-template-<version>``) and every later start copies it: the server then only
creates its admin user and begins serving.

Under pytest-xdist the controller starts the one server of the run (its workers only collect and run tests and may
end before the server is up): it announces it in a folder its workers share (``state_dir``), and the worker whose
test needs it waits there (``wait_ready_elsewhere``).
"""

from __future__ import annotations

import json
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
# In ``state_dir``: the server's URL and log (written when it is started), its pid (once launched), or why it failed.
STATE_FILE, PID_FILE, ERROR_FILE = "label-studio.json", "label-studio.pid", "label-studio.error"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(path: Path, text: str) -> None:
    """Whole or not at all: another process polls for the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.rename(path)


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _answers(url: str) -> bool:
    """The API answers the admin's token."""
    headers = {"Authorization": f"Token {TOKEN}"}
    try:
        req = urllib.request.Request(f"{url}/api/projects", headers=headers)  # noqa: S310 - local test server
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local test server
            return bool(resp.status == 200)
    except OSError:
        return False


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

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir
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
        if self.state_dir is not None:
            _write(self.state_dir / STATE_FILE, json.dumps({"url": self.url, "log": str(self.log_path)}))
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
                if self.state_dir is not None:
                    _write(self.state_dir / PID_FILE, str(self.process.pid))
        except BaseException as exc:  # reported by wait_ready (and wait_ready_elsewhere)
            self.error = exc
            if self.state_dir is not None:
                _write(self.state_dir / ERROR_FILE, repr(exc))

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
        return _log_tail(self.log_path)

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
            if _answers(self.url):
                return self.url
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


def wait_ready_elsewhere(state_dir: Path, timeout: float = READY_TIMEOUT_S, announced_within: float = 10.0) -> str:
    """``wait_ready`` for a server another process of this run started with ``state_dir`` (pytest-xdist's
    controller): block until its API answers; return the URL, or raise with its log. The controller announces
    the server before it hands out any test: nothing announced within ``announced_within`` s is a failure."""
    from workbench.embedded import _pid_alive

    deadline = time.monotonic() + timeout
    announced_by = time.monotonic() + announced_within
    while not (state_dir / STATE_FILE).exists():
        if time.monotonic() > announced_by:
            raise RuntimeError(f"Label Studio was not started for this run (nothing in {state_dir})")
        time.sleep(0.2)
    state = json.loads((state_dir / STATE_FILE).read_text())
    url, log_path = state["url"], Path(state["log"])
    while True:
        if (state_dir / ERROR_FILE).exists():
            error = (state_dir / ERROR_FILE).read_text()
            raise RuntimeError(f"Label Studio could not be started: {error}\n{_log_tail(log_path)}")
        if (state_dir / PID_FILE).exists() and not _pid_alive(int((state_dir / PID_FILE).read_text())):
            raise RuntimeError(f"Label Studio exited\n{_log_tail(log_path)}")
        if _answers(url):
            return url
        if time.monotonic() > deadline:
            raise RuntimeError(f"Label Studio did not answer within {timeout:.0f} s\n{_log_tail(log_path)}")
        time.sleep(0.5)
