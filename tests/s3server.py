"""A real S3-compatible server for tests and benchmarks: s3rver (npm, installed by scripts/setup.sh into
scripts/s3rver/node_modules) on a free loopback port, its data in a private folder, stopped on exit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
S3RVER = ROOT / "scripts" / "s3rver" / "node_modules" / "s3rver" / "bin" / "s3rver.js"
# s3rver's built-in account.
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def client(self, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=kwargs.pop("access_key", ACCESS_KEY),
            aws_secret_access_key=kwargs.pop("secret_key", SECRET_KEY),
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """The environment that points a workbench process (web or worker) at this server."""
        return {
            "MEDIA_STORAGE": "s3",
            "MEDIA_S3_BUCKET": bucket,
            "MEDIA_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def stop(self, *, keep_data: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not keep_data:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_s3_server(port: int | None = None, directory: Path | None = None) -> S3Server:
    """Start s3rver on 127.0.0.1 (a free port unless given) and wait until it accepts connections."""
    if not S3RVER.is_file():
        raise RuntimeError(f"{S3RVER} is missing: run scripts/setup.sh (it runs `npm ci` in scripts/s3rver).")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: run scripts/setup.sh.")
    port = port or free_port()
    directory = directory or Path(tempfile.mkdtemp(prefix="s3rver-"))
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [node, str(S3RVER), "-d", str(directory), "-a", "127.0.0.1", "-p", str(port), "--silent", "--no-vhost-buckets"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"s3rver exited with {process.returncode}: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("s3rver did not start within 30 s")
    return S3Server(endpoint=f"http://127.0.0.1:{port}", port=port, directory=directory, process=process)


def point_media_storage_at(settings: Any, endpoint: str) -> None:
    """Media storage at ``endpoint`` (same bucket and keys), failing fast when nothing answers there."""
    settings.MEDIA_S3_CONNECT_TIMEOUT = 0.5
    settings.MEDIA_S3_MAX_ATTEMPTS = 1
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "endpoint_url": endpoint}},
    }
