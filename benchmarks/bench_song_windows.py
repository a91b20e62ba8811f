"""How many windows a whole song can afford: end-to-end time against the window cap.

Usage::

    python benchmarks/bench_song_windows.py                         # caps 8 12 16 24 32, this tree only
    python benchmarks/bench_song_windows.py --baseline /work/main   # and that checkout's code, interleaved

For each clip (synthetic 44.1 kHz stereo MP3s of 30 s and 3 minutes, or ``--file``) and
each cap ``N`` (:data:`genre_model.config.MAX_WINDOWS` is the shipped one) it prints the
median over ``--runs`` of :meth:`Classifier.predict` + :meth:`Prediction.image` (what the
bot does per upload) in wall-clock and in CPU time of the process (all threads: what
limits clips per second when every core is busy), the windows analysed and the seconds
they cover. With
``--baseline DIR`` the same is timed with the ``genre_model`` found in ``DIR`` (for
example the previous main, at its own default cap), in a second process that takes
turns with this one, so both see the same machine load.

Each code version runs in its own process (``--serve``), loads the classifier once and
times one request at a time; requests alternate between the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def serve(model: str | None) -> int:
    """Child: load the classifier, then answer ``{"file", "cap"}`` lines with timings."""
    import genre_model.config as config
    from genre_model.predict import Classifier

    clf = Classifier(model) if model else Classifier()
    print(json.dumps({"ready": True, "default_cap": config.MAX_WINDOWS,
                      "code": str(Path(config.__file__).parent)}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        path, cap = Path(req["file"]), req["cap"] or config.MAX_WINDOWS
        start, cpu = time.perf_counter(), time.process_time()
        pred = clf.predict(path, max_windows=cap)
        pred.image(clf.labels, path.name)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        analysed = getattr(pred, "analysed_s", None)
        if analysed is None:  # older code: windows never overlapped
            analysed = sum(min(s.end_s, pred.duration_s) - s.start_s for s in pred.timeline)
        print(json.dumps({"s": elapsed, "cpu_s": cpu, "windows": len(pred.timeline), "analysed_s": analysed,
                          "duration_s": pred.duration_s}), flush=True)
    return 0


class Server:
    """A ``--serve`` child process running the genre_model found in ``code_dir``."""

    def __init__(self, code_dir: Path, model: str | None) -> None:
        env = dict(os.environ, PYTHONPATH=str(code_dir), TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve"] + (["--model", model] if model else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=str(code_dir))
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("benchmark child exited")
        return json.loads(line)

    def time(self, path: Path, cap: int | None) -> dict:
        self.proc.stdin.write(json.dumps({"file": str(path), "cap": cap}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    parser.add_argument("--file", type=Path, action="append", default=[], help="clip(s) instead of synthetic ones")
    parser.add_argument("--caps", type=int, nargs="+", default=[8, 12, 16, 24, 32], help="window caps to time")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout whose genre_model is timed too, at its default cap")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per configuration, after one warm-up")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.model)

    sys.path.insert(0, str(HERE))
    from bench_predict import write_mp3

    with tempfile.TemporaryDirectory(prefix="bench_song_windows-") as tmp:
        clips = args.file or [write_mp3(Path(tmp) / "clip-30s.mp3", 30.0, seed=1),
                              write_mp3(Path(tmp) / "song-3min.mp3", 180.0, seed=2)]
        servers = {"this tree": Server(REPO, args.model)}
        if args.baseline:
            servers["baseline"] = Server(args.baseline.resolve(), args.model)
        configs = [("this tree", cap) for cap in args.caps] + ([("baseline", None)] if args.baseline else [])
        samples: dict[tuple[str, str, int | None], list[dict]] = {}
        try:
            for clip in clips:
                for config in configs:  # warm-up
                    servers[config[0]].time(clip, config[1])
                for _ in range(args.runs):
                    for name, cap in configs:
                        samples.setdefault((clip.name, name, cap), []).append(servers[name].time(clip, cap))
        finally:
            for server in servers.values():
                server.close()

    rows = []
    for (clip, name, cap), runs in samples.items():
        last = runs[-1]
        rows.append({"clip": clip, "code": name, "cap": cap or servers[name].info["default_cap"],
                     "windows": last["windows"], "analysed_s": round(last["analysed_s"], 1),
                     "duration_s": round(last["duration_s"], 1),
                     "median_s": round(statistics.median(r["s"] for r in runs), 4),
                     "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 4)})
    if args.json:
        print(json.dumps({"runs": args.runs, "cpus": os.cpu_count(), "rows": rows}))
        return 0
    print(f"predict + image, median of {args.runs} interleaved runs; {os.cpu_count()} CPUs")
    print(f"{'clip':<16} {'code':<10} {'cap':>4} {'windows':>7} {'analysed':>13} {'wall':>9} {'cpu':>9}")
    for r in rows:
        print(f"{r['clip'][:16]:<16} {r['code']:<10} {r['cap']:>4} {r['windows']:>7} "
              f"{r['analysed_s']:>5.1f}/{r['duration_s']:>5.1f} s {r['median_s'] * 1000:>7.1f}ms "
              f"{r['median_cpu_s'] * 1000:>7.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
