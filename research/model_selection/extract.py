"""Embed every GTZAN track (and augmented copies) with the full musicnn backbone; cache per track.

usage: extract.py orig            -> emb/orig/<stem>.npz  (hop 31 frames = 0.5 s)
       extract.py aug K           -> emb/aug{k}/<stem>.npz (hop 62 frames), k = 0..K-1
"""
import csv, os, sys, subprocess, tempfile, time
import numpy as np
from genre_model.audio import load_audio
from genre_model.features import MUSICNN_FEATURES as CFG, log_mel, window_starts, cut_windows
from backbone import Backbone

DATA = os.environ["SELECTION_DATA"]  # the GTZAN folder with MANIFEST.csv (artist, ff_split)
OUT = os.path.join(os.environ["SELECTION_DIR"], "emb")
rows = list(csv.DictReader(open(f"{DATA}/MANIFEST.csv")))
bb = Backbone(threads=2)

def embed(samples, hop):
    spec = log_mel(samples, CFG)
    starts = window_starts(spec.shape[-1], CFG, hop_frames=hop)
    w = cut_windows(spec, CFG, starts)
    out = bb(w)
    return dict(max_pool=out["a753"], mean_pool=out["b753"], penultimate=out["penultimate"],
                taggram=out["taggram"], starts=starts)

def augment(path, seed):
    rng = np.random.default_rng(seed)
    semis = rng.uniform(-2, 2); tempo = rng.uniform(0.9, 1.1); tilt = rng.uniform(-6, 6)
    filters = [f"rubberband=pitch={2 ** (semis / 12):.4f}:tempo={tempo:.4f}",
               f"{'highshelf' if tilt > 0 else 'lowshelf'}=f={rng.uniform(1500, 4000) if tilt > 0 else rng.uniform(150, 400):.0f}:g={abs(tilt):.1f}"]
    codec = rng.choice(["libmp3lame -b:a 64k", "libmp3lame -b:a 128k", "libopus -b:a 48k", "aac -b:a 96k"])
    ext = {"libmp3lame": "mp3", "libopus": "opus", "aac": "m4a"}[codec.split()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"a.{ext}")
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-af", ",".join(filters), "-ac", "1", "-c:a", *codec.split(), out]
        subprocess.run(cmd, check=True)
        samples = load_audio(out, CFG.sample_rate)
    snr = rng.uniform(15, 35)
    noise = np.cumsum(rng.standard_normal(samples.size)).astype(np.float32)  # brown-ish; mix with white
    noise = noise - np.convolve(noise, np.ones(400) / 400, mode="same")
    noise = noise / (noise.std() + 1e-9) * 0.5 + rng.standard_normal(samples.size).astype(np.float32) * 0.5
    p = np.sqrt(np.mean(samples ** 2))
    samples = samples + noise * p / (10 ** (snr / 20)) / (noise.std() + 1e-9)
    return samples.astype(np.float32), dict(semis=semis, tempo=tempo, tilt=tilt, codec=codec, snr=snr)

mode = sys.argv[1]
t0 = time.time()
if mode == "orig":
    os.makedirs(f"{OUT}/orig", exist_ok=True)
    for i, r in enumerate(rows):
        stem = os.path.basename(r["file"]).rsplit(".", 1)[0]
        dst = f"{OUT}/orig/{stem}.npz"
        if os.path.exists(dst): continue
        samples = load_audio(f"{DATA}/{r['file']}", CFG.sample_rate)
        np.savez(dst, **embed(samples, 31))
        if i % 20 == 0: print(i, stem, f"{time.time()-t0:.0f}s", flush=True)
else:
    K = int(sys.argv[2])
    for k in range(K):
        os.makedirs(f"{OUT}/aug{k}", exist_ok=True)
        for i, r in enumerate(rows):
            stem = os.path.basename(r["file"]).rsplit(".", 1)[0]
            dst = f"{OUT}/aug{k}/{stem}.npz"
            if os.path.exists(dst): continue
            samples, params = augment(f"{DATA}/{r['file']}", seed=hash((k, stem)) % (2**32) if False else (k * 100003 + i))
            np.savez(dst, **embed(samples, 62), params=str(params))
            if i % 20 == 0: print(k, i, stem, f"{time.time()-t0:.0f}s", flush=True)
print("done", time.time() - t0)
