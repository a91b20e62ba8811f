"""Round 4: artist-aware training — sample weights by artist, nuisance (artist) projection."""
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
    if only and not any(o in name for o in only): return
    r, _ = evaluate(fp, AF, name); f, _ = evaluate(fp, FF, name)
    r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
    results.append(r); json.dump(results, open("exp4.json", "w"), indent=1)

def weights(tr, mode):
    y, a = Y[tr], ART[tr]
    w = np.ones(len(tr))
    if mode in ("artist", "artist+class"):
        for g in np.unique(a):
            w[a == g] = 1.0 / np.sum(a == g)
    if mode in ("class", "artist+class"):
        for c in np.unique(y):
            w[y == c] /= w[y == c].sum()
    return w * len(tr) / w.sum()

def nap(Xtr, tr, k):
    """Project out the top-k directions along which artists of the same genre differ."""
    y, a = Y[tr], ART[tr]
    rows = []
    for c in np.unique(y):
        arts = np.unique(a[y == c])
        means = np.array([Xtr[(a == g) & (y == c)].mean(0) for g in arts])
        if len(arts) > 1:
            rows.append((means - means.mean(0)) * np.sqrt(np.array([np.sum((a == g) & (y == c)) for g in arts]))[:, None])
    A = np.concatenate(rows)
    _, _, vt = np.linalg.svd(A, full_matrices=False)
    V = vt[:k].T
    return lambda X: X - (X @ V) @ V.T

def song_fp(X, C, mode, k=0, aug=None):
    def fp(tr, te):
        sc = StandardScaler().fit(X[tr]); Xtr, Xte = sc.transform(X[tr]), sc.transform(X[te])
        w = weights(tr, mode); ytr = Y[tr]
        if aug is not None:
            Xtr = np.concatenate([Xtr] + [sc.transform(A[tr]) for A in aug]); ytr = np.concatenate([ytr] * (1 + len(aug))); w = np.concatenate([w] * (1 + len(aug)))
        if k:
            P = nap(Xtr[:len(tr)], tr, k); Xtr, Xte = P(Xtr), P(Xte)
        clf = LogisticRegression(C=C, max_iter=5000).fit(Xtr, ytr, sample_weight=w)
        return clf.predict_proba(Xte)
    return fp

MM = ("mean_pool", "max_pool")
X = song_matrix("orig", 93, MM, "sqrt")
for mode in ("class", "artist", "artist+class"):
    for C in (0.003, 0.01, 0.03):
        report(f"song meanmax sqrt w={mode} C={C}", song_fp(X, C, mode))
for k in (5, 10, 20, 40):
    report(f"song meanmax sqrt w=artist+class C=0.01 NAP{k}", song_fp(X, 0.01, "artist+class", k))
XP = song_matrix("orig", 93, MM + ("penultimate", "taggram"), "sqrt")
for C in (0.003, 0.01, 0.03):
    report(f"song meanmax+pen+tags sqrt w=artist+class C={C}", song_fp(XP, C, "artist+class"))
