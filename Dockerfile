# genrebot: the Discord bot with its shipped model.
#
# Serving image (LiteRT only, no TensorFlow; /retrain answers how to enable it):
#   docker build -t genrebot .
# Training-capable image (adds TensorFlow and Keras: /retrain, genre-model train / cv):
#   docker build --build-arg EXTRAS=train -t genrebot:train .
# Run:
#   docker run -d --name genrebot --env-file .env -v genrebot-data:/data genrebot

# The wheel is built apart, so the final image holds the installed package only, not the source.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY genre_model ./genre_model
COPY migrations ./migrations
COPY testkit ./testkit
COPY bot ./bot
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
# "" (serving) or "train"
ARG EXTRAS=
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /wheels /wheels
RUN wheel="$(ls /wheels/genrebot-*.whl)" \
 && pip install --no-cache-dir "${wheel}${EXTRAS:+[$EXTRAS]}" \
 && rm -rf /wheels

RUN useradd --create-home --uid 10001 genrebot && mkdir -p /data && chown genrebot:genrebot /data
USER genrebot
WORKDIR /home/genrebot
ENV GENREBOT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["genre-bot"]
