# Datlake Catalog image: the API server (`datlake serve`) and the job worker (`datlake worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DATLAKE_HOST=0.0.0.0 DATLAKE_PORT=8181

RUN useradd --create-home --uid 10001 datlake
WORKDIR /app
COPY pyproject.toml README.md ./
COPY catalog ./catalog
COPY datlake_ext ./datlake_ext
COPY worker ./worker
COPY datlake_sdk ./datlake_sdk
RUN pip install . && mkdir -p /data && chown datlake /data

USER datlake
WORKDIR /data
EXPOSE 8181
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8181/healthz', timeout=2)"
CMD ["datlake", "serve"]
