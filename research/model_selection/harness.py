"""Model-selection harness on cached musicnn window embeddings (emb/orig, emb/aug*).

Every estimate: folds grouped by artist (near-duplicates together), 5 folds x seeds, plus the
fault-filtered train -> valid estimate; bootstrap intervals resampling tracks.
"""
import os, glob, json, time
import numpy as np
from genre_model.dataset import load_dataset, regroup, group_folds, track_id
from genre_model.evaluate import metrics, bootstrap_intervals
from genre_model.config import GENRES

DATA = os.environ["SELECTION_DATA"]  # the GTZAN folder with MANIFEST.csv (artist, ff_split)
EMB = os.path.join(os.environ["SELECTION_DIR"], "emb")
TRACKS = load_dataset(DATA, GENRES)
STEMS = [track_id(t.path) for t in TRACKS]
Y = np.array([GENRES.index(t.label) for t in TRACKS])
_cache = {}

def windows(source, stem):
    key = (source, stem)
    if key not in _cache:
        with np.load(f"{EMB}/{source}/{stem}.npz") as z:
            _cache[key] = {k: z[k] for k in ("max_pool", "mean_pool", "penultimate", "taggram", "starts")}
    return _cache[key]

def sources():
    return ["orig"] + sorted(os.path.basename(p) for p in glob.glob(f"{EMB}/aug*") if len(os.listdir(p)) >= len(TRACKS))

def select_windows(w, hop):
    """Subset of the hop-31 window grid: hop in frames (31, 62, 93, 186) or 'n8' (8 spread)."""
    starts = w["starts"]
    if hop == "n8":
        idx = np.unique(np.round(np.linspace(0, len(starts) - 1, 8)).astype(int))
    else:
        step = max(1, int(round(hop / (starts[1] - starts[0])))) if len(starts) > 1 else 1
        idx = np.arange(0, len(starts), step)
    return idx

def features(w, idx, parts=("mean_pool", "max_pool"), transform="sqrt"):
    x = np.concatenate([w[p][idx] for p in parts], axis=1).astype(np.float64)
    if transform == "sqrt":
        x = np.sign(x) * np.sqrt(np.abs(x))
    elif transform == "log":
        x = np.sign(x) * np.log1p(np.abs(x))
    return x

def song_matrix(source, hop, parts, transform, agg="mean"):
    out = []
    for stem in STEMS:
        w = windows(source, stem)
        hop_s = hop if source == "orig" else (hop if hop == "n8" else max(hop, 62))
        x = features(w, select_windows(w, hop_s), parts, transform)
        out.append(x.mean(0) if agg == "mean" else np.concatenate([x.mean(0), x.std(0)]))
    return np.stack(out)

def window_lists(source, hop, parts, transform):
    out = []
    for stem in STEMS:
        w = windows(source, stem)
        hop_s = hop if source == "orig" else max(hop, 62)
        out.append(features(w, select_windows(w, hop_s), parts, transform))
    return out

def folds(by="artist", seeds=(0, 1, 2), n=5):
    tr = regroup(TRACKS, by)
    groups = np.array([t.group for t in tr])
    res = []
    for seed in seeds:
        for fold in group_folds(tr, n, seed):
            test = np.isin(groups, fold)
            res.append((seed, np.flatnonzero(~test), np.flatnonzero(test)))
    return res

def ff_split():
    tr = np.array([t.split == "train" for t in TRACKS]); va = np.array([t.split == "valid" for t in TRACKS])
    return [(0, np.flatnonzero(tr), np.flatnonzero(va))]

def evaluate(fit_predict, splits, name=""):
    """fit_predict(train_idx, test_idx) -> probabilities (len(test_idx), 10). Returns summary dict."""
    P, T, IDX, SEED = [], [], [], []
    t0 = time.time()
    for seed, tr, te in splits:
        P.append(fit_predict(tr, te)); T.append(Y[te]); IDX.append(te); SEED.append(np.full(len(te), seed))
    P, T, IDX, SEED = map(np.concatenate, (P, T, IDX, SEED))
    per_seed = [metrics(P[SEED == s], T[SEED == s], GENRES) for s in np.unique(SEED)]
    m = metrics(P, T, GENRES)
    ci = bootstrap_intervals(P, T, tracks=IDX)
    out = dict(name=name, accuracy=m["accuracy"], balanced=m["balanced_accuracy"], macro_f1=m["macro_f1"],
               acc_ci=ci["accuracy_ci"], bal_ci=ci["balanced_accuracy_ci"],
               seed_acc=[p["accuracy"] for p in per_seed], seconds=round(time.time() - t0, 1),
               f1={g: v["f1"] for g, v in m["per_genre"].items()})
    return out, (P, T, IDX)

def fmt(r):
    return (f"{r['name']:<55} acc {r['accuracy']:.3f} [{r['acc_ci'][0]:.3f}, {r['acc_ci'][1]:.3f}]  "
            f"bal {r['balanced']:.3f} [{r['bal_ci'][0]:.3f}, {r['bal_ci'][1]:.3f}]  ({r['seconds']:.0f}s)")
