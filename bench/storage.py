"""Media pipeline with local disk vs an S3-compatible object store (s3rver on loopback), same videos.

    .venv/bin/python bench/storage.py [--videos 2] [--pairs 8] [--seconds 8]

Each pair ingests and processes the same demo videos (speech, caption, 640x360) once with local storage and
once with object storage, back to back, the order alternating from pair to pair (local first, then object
storage first, ...), in one process whose models are warmed first. With object storage the worker downloads
the video to scratch, extracts there and uploads the keyframes; every transfer is a real request to the
server. On a shared machine the load of other processes moves a single run by ±30 %, far more than storage
costs, so the figure is the **median of the per-pair ratios** (each pair ran under nearly the same load),
with its quartiles, the medians of the first and second half of the pairs (they should agree: if not, run
more pairs), and the load average before and after. The time spent inside ``workbench.storage`` is
measured too (``storage_s_per_video``): local wall + the extra storage time of object storage ÷ local wall
(``ratio_from_storage_time``) is the same question answered without the CPU noise of the other stages.
Also measured: upload throughput of a 64 MiB file into each storage, and time to first byte of playback
(the media view, then for object storage the presigned URL's first 64 KiB Range response). The last line is
one JSON object; ``ratio`` = median over pairs of object-storage wall ÷ local wall (goal ≤ 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.storage``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


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


class _StorageClock:
    """Seconds spent inside the storage entry points the ingest and the pipeline call (outermost calls only)."""

    NAMES = ("local_copy", "store_file", "store_tree", "list_names", "delete", "delete_prefix")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def install(self) -> None:
        from workbench import storage

        for name in self.NAMES:
            setattr(storage, name, self._timed(getattr(storage, name)))

    def _timed(self, func: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started

        return timed


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


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [round(values[0], 3)] * 3 if values else []
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [round(q1, 3), round(q2, 3), round(q3, 3)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    django_setup()
    from django.test import Client
    from django.test.utils import override_settings, setup_databases, teardown_databases

    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.media.models import Video
    from tests.factories import UserFactory
    from tests.s3server import start_s3_server
    from workbench.roles import sync_role_groups

    clock = _StorageClock()
    clock.install()
    load_before = os.getloadavg()
    old_config = setup_databases(verbosity=0, interactive=False)
    server = start_s3_server()
    walls: dict[str, list[float]] = {"local": [], "s3": []}
    ingests: dict[str, list[float]] = {"local": [], "s3": []}
    in_storage: dict[str, list[float]] = {"local": [], "s3": []}
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
            for mode in ("local", "s3"):  # the first run of each pays one-time costs (imports, caches, clients)
                where = tmp / f"warm-{mode}"
                bucket = server.create_bucket(f"warm-{uuid.uuid4().hex[:10]}")
                with override_settings(
                    **(_s3_settings(server, bucket, where) if mode == "s3" else _local_settings(where))
                ):
                    _pipeline(clips[:1])
            for pair in range(args.pairs):
                order = ["local", "s3"] if pair % 2 == 0 else ["s3", "local"]
                this_pair: dict[str, float] = {}
                for mode in order:
                    bucket = server.create_bucket(f"bench-{uuid.uuid4().hex[:10]}")
                    where = tmp / f"{mode}-{pair}"
                    config = _s3_settings(server, bucket, where) if mode == "s3" else _local_settings(where)
                    with override_settings(**config):
                        if mode == "s3":
                            # A worker process makes its S3 client once and keeps it; the new bucket's
                            # settings made a new one here, so it is made before the clock starts.
                            from workbench import storage as media_storage

                            media_storage.list_names("warm")
                        clock.seconds = 0.0
                        wall, ingest, ids = _pipeline(clips)
                        in_storage[mode].append(clock.seconds / len(clips))
                        uploads[mode].append(_upload_mib_per_s(big))
                        video = Video.objects.get(pk=ids[0])
                        ttfb[mode].append(_ttfb_ms(client, video.file.name, mode == "s3"))
                    walls[mode].append(wall)
                    ingests[mode].append(ingest)
                    this_pair[mode] = wall
                    print(f"pair {pair} {mode}: pipeline {wall:.2f} s (ingest {ingest:.2f} s, in storage "
                          f"{in_storage[mode][-1]:.3f} s/video), upload {uploads[mode][-1]:.0f} MiB/s, "
                          f"TTFB {ttfb[mode][-1]:.1f} ms, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
                ratios.append(this_pair["s3"] / this_pair["local"])
                print(f"pair {pair}: ratio {ratios[-1]:.3f}", flush=True)
    finally:
        server.stop()
        teardown_databases(old_config, verbosity=0)
    load_after = os.getloadavg()

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    half = len(ratios) // 2
    local_wall = statistics.median(walls["local"])
    storage_extra = statistics.median(in_storage["s3"]) - statistics.median(in_storage["local"])
    result = {
        "ratio": med(ratios),
        "ratio_quartiles": _quartiles(ratios),
        "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
        "ratio_median_first_half": med(ratios[:half]) if half else None,
        "ratio_median_second_half": med(ratios[half:]) if half else None,
        "ratio_of_medians": round(statistics.median(walls["s3"]) / local_wall, 3),
        "ratio_from_storage_time": round((local_wall + storage_extra * args.videos) / local_wall, 3),
        "ratio_per_pair": [round(r, 3) for r in ratios],
        "videos": args.videos,
        "video_seconds": args.seconds,
        "pairs": args.pairs,
        "load_avg_1m_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
        "cores": os.cpu_count(),
        "pipeline_s_local_median": med(walls["local"]),
        "pipeline_s_s3_median": med(walls["s3"]),
        "ingest_s_local_median": med(ingests["local"]),
        "ingest_s_s3_median": med(ingests["s3"]),
        "storage_s_per_video_local_median": med(in_storage["local"]),
        "storage_s_per_video_s3_median": med(in_storage["s3"]),
        "upload_mib_per_s_local_median": med(uploads["local"]),
        "upload_mib_per_s_s3_median": med(uploads["s3"]),
        "playback_ttfb_ms_local_median": med(ttfb["local"]),
        "playback_ttfb_ms_s3_median": med(ttfb["s3"]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
