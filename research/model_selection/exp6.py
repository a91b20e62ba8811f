"""Round 6: the best family (meanmax+penultimate+tags, class and artist weights), tags raw, C grid, augmentation."""
import sys, json, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from harness import *
from genre_model.dataset import regroup

AF = folds("artist"); FF = ff_split()
ART = np.array([t.group for t in regroup(TRACKS, "artist")])
only = sys.argv[1:]
results = []
def report(name, fp):
    r, _ = evaluate(fp, AF, name); f, _ = evaluate(fp, FF, name)
    r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
    results.append(r); json.dump(results, open(f"exp6-{'_'.join(only) or 'all'}.json", "w"), indent=1)

def weights(tr, mode):
    y, a = Y[tr], ART[tr]; w = np.ones(len(tr))
    if "artist" in mode:
        for g in np.unique(a): w[a == g] = 1.0 / np.sum(a == g)
    if "class" in mode:
        for c in np.unique(y): w[y == c] /= w[y == c].sum()
    return w * len(tr) / w.sum()

def song_fp(X, C, mode, aug=()):
    def fp(tr, te):
        sc = StandardScaler().fit(X[tr]); w = weights(tr, mode)
        Xtr = np.concatenate([sc.transform(X[tr])] + [sc.transform(A[tr]) for A in aug])
        clf = LogisticRegression(C=C, max_iter=5000).fit(Xtr, np.tile(Y[tr], 1 + len(aug)), sample_weight=np.tile(w, 1 + len(aug)))
        return clf.predict_proba(sc.transform(X[te]))
    return fp

def matrix(source, tags_raw=True):
    a = song_matrix(source, 93, ("mean_pool", "max_pool", "penultimate"), "sqrt")
    t = song_matrix(source, 93, ("taggram",), "none" if tags_raw else "sqrt")
    return np.hstack([a, t])

X = matrix("orig")
if not only or "grid" in only:
    for mode in ("class", "artist+class"):
        for C in (0.001, 0.002, 0.003, 0.005, 0.01):
            report(f"mm+pen+tagsraw w={mode} C={C}", song_fp(X, C, mode))
if "aug" in only:
    augs = [s for s in sources() if s != "orig"]
    XA = [matrix(s) for s in augs]
    for mode in ("class", "artist+class"):
        for C in (0.002, 0.005):
            report(f"mm+pen+tagsraw w={mode} C={C} +{len(augs)} aug", song_fp(X, C, mode, XA))
