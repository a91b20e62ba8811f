"""Inside an image (stdin of `python -`): write a song in every format the bot accepts, classify each
with `genre-model predict`, and fail unless every file is decoded. Used by deploy/smoke.sh."""
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.audio import FORMATS, encode, synth_music

folder = Path(tempfile.mkdtemp())
song = synth_music(8.0, 22050, seed=1)
files = {name: encode(song, folder / f"{name}.{ext}", 22050, name) for name, (ext, _, _) in FORMATS.items()}
mp4 = folder / "video.mp4"  # audio in an MP4 video container
subprocess.run([shutil.which("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(files["wav"]),
                "-f", "lavfi", "-i", "color=c=black:s=64x64:d=8", "-shortest", "-c:a", "aac", "-c:v", "mpeg4",
                str(mp4)], check=True)
files["mp4"] = mp4
started = time.monotonic()
done = subprocess.run(["genre-model", "predict", "--json", *map(str, files.values())], capture_output=True, text=True)
seconds = time.monotonic() - started
answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
failed = [name for name, answer in zip(files, answers) if not answer.get("genre") and not answer.get("genres")]
print(f"decode check: {len(answers)}/{len(files)} files classified in {seconds:.1f}s "
      f"({', '.join(files)}); ffmpeg {shutil.which('ffmpeg')}")
if done.returncode != 0 or len(answers) != len(files) or failed:
    print(done.stdout[-2000:], done.stderr[-2000:], f"failed: {failed}", file=sys.stderr)
    sys.exit(1)
print("decode check: every accepted format decodes")
