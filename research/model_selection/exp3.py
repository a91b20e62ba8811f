"""Not-music detector: music (GTZAN, artist-grouped CV) vs generated non-music; held-out generated set; real game music/sfx."""
import glob, json, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from harness import *

SOUNDS = ["music", "speech", "tone", "noise"]
def clip_feats(z, parts, idx=None):
    idx = np.arange(len(z["starts"])) if idx is None else idx
    return features(z, idx, parts, "sqrt").mean(0)

def load_dir(pattern, parts):
    X, kinds, names = [], [], []
    for f in sorted(glob.glob(pattern)):
        with np.load(f) as z:
            d = {k: z[k] for k in ("max_pool", "mean_pool", "penultimate", "taggram", "starts")}
            X.append(clip_feats(d, parts)); kinds.append(str(z["sound"]) if "sound" in z else "?"); names.append(f)
    return np.array(X), np.array(kinds), names

for parts in [("taggram",), ("penultimate",), ("mean_pool", "max_pool"), ("mean_pool", "max_pool", "taggram"), ("penultimate", "taggram")]:
    Xm = song_matrix("orig", 93, parts, "sqrt")
    Xn, kn, _ = load_dir("emb/nonmusic/train-*.npz", parts)
    Xh, kh, nh = load_dir("emb/nonmusic/heldout-*.npz", parts)
    Xr, _, nr = load_dir("emb/realmusic/*.npz", parts)
    Xs, _, ns = load_dir("emb/realsfx/*.npz", parts)
    yn = np.array([SOUNDS.index(k) for k in kn])
    for C in (0.01, 0.1, 1.0):
        flagged = 0; pm_music = []
        for seed, tr, te in folds("artist", seeds=(0,)):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced"))
            clf.fit(np.concatenate([Xm[tr], Xn]), np.concatenate([np.zeros(len(tr), int), yn]))
            p = clf.predict_proba(Xm[te])[:, 0]; pm_music += list(p)
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced"))
        clf.fit(np.concatenate([Xm, Xn]), np.concatenate([np.zeros(len(Xm), int), yn]))
        ph = clf.predict_proba(Xh)[:, 0]; pr = clf.predict_proba(Xr)[:, 0] if len(Xr) else np.array([1.0]); ps = clf.predict_proba(Xs)[:, 0] if len(Xs) else np.array([0.0])
        pm_music = np.array(pm_music)
        for thr in (0.5, 0.2, 0.05):
            print(f"{'+'.join(parts):<32} C={C:<5} thr={thr:<5} GTZAN flagged {np.sum(pm_music < thr):3d}/304 (min p {pm_music.min():.3f})  "
                  f"heldout caught {np.mean(ph < thr):.3f} ({np.sum(ph < thr)}/{len(ph)})  realmusic flagged {np.sum(pr < thr)}/{len(pr)}  realsfx caught {np.mean(ps < thr):.3f} of {len(ps)}", flush=True)
        missed = [(nh[i].split('/')[-1], round(float(ph[i]), 3)) for i in np.flatnonzero(ph >= 0.5)][:8]
        print("   missed heldout:", missed, flush=True)
