# genrebot: the Discord bot with its shipped model. Build: docker build -t genrebot .
# Run:   docker run -d --name genrebot -e DISCORD_TOKEN=... -v genrebot-data:/data genrebot
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 genrebot
WORKDIR /app
COPY pyproject.toml README.md ./
COPY genre_model ./genre_model
COPY genrebot ./genrebot
COPY bot ./bot
RUN pip install --no-cache-dir -e . && mkdir -p /data && chown genrebot:genrebot /data

USER genrebot
ENV GENREBOT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot"]
