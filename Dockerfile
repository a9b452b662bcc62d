# syntax=docker/dockerfile:1
# convlens: CPU-only image. Build: docker build -t convlens .   Run: docker run -p 8000:8000 convlens

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# the CPU wheel from PyTorch's own index: the default PyPI wheel bundles CUDA (GBs)
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY convlens ./convlens
COPY app ./app
COPY model ./model
COPY weights ./weights
# torch==2.13.0 is already satisfied by the CPU build, so pip keeps it; the weights and
# their cards are package data of convlens (site-packages/convlens/weights)
RUN pip install .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 convlens \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv --shell /usr/sbin/nologin convlens
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    WEB_CONCURRENCY=2
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# exec form: SIGTERM reaches uvicorn, which drains in-flight requests before exiting
ENTRYPOINT ["python", "-m", "convlens.app.serve"]
