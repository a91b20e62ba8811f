import sys, os, time, numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from genre_model.nonmusic import nonmusic_set
from genre_model.features import MUSICNN_FEATURES as CFG, log_mel, window_starts, cut_windows
from backbone import Backbone
bb = Backbone(threads=1)
os.makedirs("emb/nonmusic", exist_ok=True)
for part, n in (("train", 20), ("heldout", 10)):
    t0 = time.time()
    clips = nonmusic_set(n, CFG.sample_rate, part=part, seed=7)
    print(part, len(clips), "generated", time.time() - t0, flush=True)
    for i, c in enumerate(clips):
        spec = log_mel(c.samples, CFG)
        starts = window_starts(spec.shape[-1], CFG, hop_frames=93)
        out = bb(cut_windows(spec, CFG, starts))
        np.savez(f"emb/nonmusic/{part}-{i:03d}-{c.kind}.npz", max_pool=out["a753"], mean_pool=out["b753"],
                 penultimate=out["penultimate"], taggram=out["taggram"], starts=starts, sound=c.sound)
    print(part, "embedded", time.time() - t0, flush=True)
