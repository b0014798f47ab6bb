# chainlens in a container: the package and what it needs to run, nothing of its tests.
# torch comes from PyTorch's CPU wheel index (the default index's CUDA build is several
# GB); the GPU service builds with TORCH_INDEX=https://download.pytorch.org/whl/cu126.
# It runs as an unprivileged user; its runs are kept in /data (a volume), or in Redis
# when CHAINLENS_REDIS_URL is set (docker-compose.yml).
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION" \
 && pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 chainlens \
 && mkdir /data && chown chainlens /data
USER chainlens
ENV CHAINLENS_HOST=0.0.0.0 CHAINLENS_PORT=8000 CHAINLENS_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/ready', timeout=2)"]
CMD ["chainlens", "serve"]
