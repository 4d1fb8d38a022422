"""Media pipeline with local disk vs an S3-compatible object store (s3rver on loopback), same videos.

    .venv/bin/python bench/storage.py [--videos 2] [--rounds 3] [--seconds 10]

Each round ingests and processes the same demo videos (speech, caption, 640x360) once with local storage and
once with object storage, in alternating order (local first on even rounds), in one process whose models are
warmed first. With object storage the worker downloads the video to scratch, extracts there and uploads the
keyframes; the upload is a real PUT to the server. Also measured: upload throughput of a 64 MiB file into
each storage, and time to first byte of playback (the media view, then for object storage the presigned
URL's first 64 KiB Range response). The last line is one JSON object; ``ratio`` = median object-storage
pipeline wall time ÷ median local wall time (goal ≤ 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import django_setup


def _warm() -> None:
    from moderation.media import analyzers, extractors

    extractors.whisper_model()
    analyzers._ocr_engine()
    analyzers.text_embedding("warm up")


def _s3_settings(server: Any, bucket: str, scratch: Path) -> dict[str, Any]:
    from django.conf import settings

    from tests.s3server import ACCESS_KEY, SECRET_KEY

    return {
        "MEDIA_STORAGE": "s3",
        "MEDIA_S3_BUCKET": bucket,
        "MEDIA_S3_ENDPOINT_URL": server.endpoint,
        "MEDIA_ROOT": scratch,
        "STORAGES": {
            **settings.STORAGES,
            "default": {
                "BACKEND": "workbench.storage.MediaS3Storage",
                "OPTIONS": {
                    "bucket_name": bucket, "endpoint_url": server.endpoint, "region_name": "us-east-1",
                    "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "addressing_style": "path",
                    "default_acl": None, "file_overwrite": True,
                },
            },
        },
    }  # fmt: skip


def _local_settings(root: Path) -> dict[str, Any]:
    from django.conf import settings

    return {
        "MEDIA_STORAGE": "local",
        "MEDIA_ROOT": root,
        "STORAGES": {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}},
    }


def _pipeline(clips: list[Path]) -> tuple[float, float, list[int]]:
    """Ingest and process every clip; returns (wall seconds, of which ingest seconds, video ids)."""
    from moderation.media.ingest import video_ingest
    from moderation.media.models import Video
    from moderation.media.pipeline import video_process

    Video.objects.all().delete()
    ids, ingest = [], 0.0
    started = time.perf_counter()
    for clip in clips:
        t0 = time.perf_counter()
        video = video_ingest(path=clip, title=clip.stem)
        ingest += time.perf_counter() - t0
        done = video_process(video_id=video.pk)
        assert done is not None and done.status == Video.Status.READY, done and done.error
        ids.append(video.pk)
    return time.perf_counter() - started, ingest, ids


def _upload_mib_per_s(big: Path) -> float:
    from workbench import storage

    started = time.perf_counter()
    storage.store_file(big, f"bench/{uuid.uuid4().hex}.bin")
    return big.stat().st_size / 2**20 / (time.perf_counter() - started)


def _ttfb_ms(client: Any, video_name: str, object_storage: bool) -> float:
    """Media view → (object storage: presigned URL) → first 64 KiB of the video, as the player asks."""
    import requests

    started = time.perf_counter()
    response = client.get(f"/media/{video_name}", headers={"Range": "bytes=0-65535"})
    if object_storage:
        assert response.status_code == 302, response.status_code
        with requests.get(response["Location"], headers={"Range": "bytes=0-65535"}, stream=True, timeout=30) as r:
            assert r.status_code == 206, r.status_code
            next(r.iter_content(1024))
    else:
        assert response.status_code == 206, response.status_code
        next(iter(response.streaming_content))  # type: ignore[arg-type]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    django_setup()
    from django.test import Client
    from django.test.utils import override_settings, setup_databases, teardown_databases

    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.media.models import Video
    from tests.factories import UserFactory
    from tests.s3server import start_s3_server
    from workbench.roles import sync_role_groups

    old_config = setup_databases(verbosity=0, interactive=False)
    server = start_s3_server()
    walls: dict[str, list[float]] = {"local": [], "s3": []}
    ingests: dict[str, list[float]] = {"local": [], "s3": []}
    uploads: dict[str, list[float]] = {"local": [], "s3": []}
    ttfb: dict[str, list[float]] = {"local": [], "s3": []}
    ratios: list[float] = []
    try:
        sync_role_groups()
        client = Client()
        client.force_login(UserFactory(role="moderator"))
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            clips = []
            for i in range(args.videos):
                script = DEMO_SCRIPTS[i % len(DEMO_SCRIPTS)]
                clips.append(
                    synthesize_video(
                        tmp / f"clip{i}.mp4", title=f"{script.title} {i}", speech=script.speech,
                        on_screen=script.on_screen, min_seconds=args.seconds, max_seconds=args.seconds,
                    )
                )  # fmt: skip
            big = tmp / "big.bin"
            big.write_bytes(os.urandom(64 * 2**20))
            _warm()
            with override_settings(**_local_settings(tmp / "warm")):
                _pipeline(clips[:1])  # the first run pays one-time costs (imports, caches)
            for round_no in range(args.rounds):
                order = ["local", "s3"] if round_no % 2 == 0 else ["s3", "local"]
                this_round: dict[str, float] = {}
                for mode in order:
                    bucket = server.create_bucket(f"bench-{uuid.uuid4().hex[:10]}")
                    where = tmp / f"{mode}-{round_no}"
                    config = _s3_settings(server, bucket, where) if mode == "s3" else _local_settings(where)
                    with override_settings(**config):
                        wall, ingest, ids = _pipeline(clips)
                        uploads[mode].append(_upload_mib_per_s(big))
                        video = Video.objects.get(pk=ids[0])
                        ttfb[mode].append(_ttfb_ms(client, video.file.name, mode == "s3"))
                    walls[mode].append(wall)
                    ingests[mode].append(ingest)
                    this_round[mode] = wall
                    print(f"round {round_no} {mode}: pipeline {wall:.2f} s (ingest {ingest:.2f} s), "
                          f"upload {uploads[mode][-1]:.0f} MiB/s, TTFB {ttfb[mode][-1]:.1f} ms", flush=True)  # fmt: skip
                ratios.append(this_round["s3"] / this_round["local"])
    finally:
        server.stop()
        teardown_databases(old_config, verbosity=0)

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    result = {
        "ratio": round(statistics.median(walls["s3"]) / statistics.median(walls["local"]), 3),
        "ratio_per_round": [round(r, 3) for r in ratios],
        "videos": args.videos,
        "video_seconds": args.seconds,
        "rounds": args.rounds,
        "pipeline_s_local_median": med(walls["local"]),
        "pipeline_s_s3_median": med(walls["s3"]),
        "ingest_s_local_median": med(ingests["local"]),
        "ingest_s_s3_median": med(ingests["s3"]),
        "upload_mib_per_s_local_median": med(uploads["local"]),
        "upload_mib_per_s_s3_median": med(uploads["s3"]),
        "playback_ttfb_ms_local_median": med(ttfb["local"]),
        "playback_ttfb_ms_s3_median": med(ttfb["s3"]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
