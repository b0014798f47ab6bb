# chainlens in a container: the Makefile's own steps (`make setup`, then `make run`).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN make setup
ENV CHAINLENS_HOST=0.0.0.0 CHAINLENS_PORT=8000
EXPOSE 8000
CMD ["make", "run"]
