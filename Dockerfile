# Image for web and CPU workers. GPU workers build with --build-arg REQUIREMENTS=gpu.txt on a CUDA base.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG REQUIREMENTS=cpu.txt
# GPU media workers: "onnxruntime-gpu==1.31.1" replaces the CPU onnxruntime wheel (same module name) so OCR
# runs on onnxruntime's CUDA provider; empty for every other image.
ARG ONNXRUNTIME=""
# Ubuntu bases (CUDA) would stop the build at tzdata's time zone question.
ARG DEBIAN_FRONTEND=noninteractive
# g++: pdqhash has no binary wheel and is compiled at install. A base without Python (the CUDA images GPU
# workers build on: Ubuntu 24.04, Python 3.12) gets the distribution's Python, its headers and a venv on PATH.
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg espeak-ng fonts-dejavu-core libpq5 g++ \
    && if ! command -v python >/dev/null; then \
         apt-get install -y --no-install-recommends python3 python3-venv python3-dev && python3 -m venv /opt/venv; \
       fi \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH
# Web, workers and beat run as this unprivileged user (uid and gid 10001: fixed, so a volume's or a host folder's
# owner, a platform's runAsUser/fsGroup and `chown 10001:10001` all name it; above the bases' own users, such as
# Ubuntu's 1000). It owns only the folders the app writes; the code and the collected static files stay root's.
ARG APP_UID=10001
ARG APP_GID=10001
RUN groupadd --system --gid ${APP_GID} workbench \
    && useradd --system --uid ${APP_UID} --gid ${APP_GID} --home-dir /home/workbench --create-home \
         --shell /usr/sbin/nologin workbench
WORKDIR /app
COPY requirements/ requirements/
COPY scripts/gpu_requirements.py scripts/gpu_requirements.py
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
    || pip install --no-cache-dir "torch==2.13.0"
# gpu.txt replaces some of cpu.txt's pins (numpy for vllm), which pip cannot read from the file itself.
RUN python scripts/gpu_requirements.py requirements/${REQUIREMENTS} > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements/nodeps.txt
RUN if [ -n "$ONNXRUNTIME" ]; then pip uninstall -y onnxruntime && pip install --no-cache-dir "$ONNXRUNTIME"; fi
COPY . .
ENV DJANGO_SETTINGS_MODULE=workbench.settings PYTHONUNBUFFERED=1
RUN SECRET_KEY=build DATABASE_URL=sqlite:////tmp/build.db REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
    && python -m compileall -q workbench moderation annotation training
# What the app writes, owned by its user: /scratch (compose's MEDIA_ROOT, WORKBENCH_VAR_DIR and
# PROMETHEUS_MULTIPROC_DIR: the whisper model assembled from its wheels, cascade models, training output, beat's
# schedule), /app/var (WORKBENCH_VAR_DIR's default: the same, run without compose) and the Hugging Face cache
# (HF_HOME; compose mounts the `models` volume there on the infer and train workers: a named volume takes this
# folder's owner when it is first created). RapidOCR's and the text embedder's models are read from site-packages.
ENV HF_HOME=/home/workbench/.cache/huggingface
RUN mkdir -p /scratch /app/var "$HF_HOME" \
    && chown ${APP_UID}:${APP_GID} /scratch /app/var \
    && chown -R ${APP_UID}:${APP_GID} /home/workbench
# Numeric, so a platform can check runAsNonRoot without reading /etc/passwd. The app's user cannot write /app, so
# its bytecode is compiled above, once, rather than by every process at every start.
USER ${APP_UID}:${APP_GID}
EXPOSE 8000
# Binds 0.0.0.0:8000; workers, timeouts and logs from the environment (workbench/gunicorn_conf.py).
CMD ["gunicorn", "-c", "python:workbench.gunicorn_conf", "workbench.wsgi:application"]
