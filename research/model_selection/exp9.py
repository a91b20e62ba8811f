"""Round 9: pooling / geometry / classifier alternatives to the shipped recipe (exp6 mm+pen+tagsraw w=class C=0.001)."""
import sys, json, numpy as np
from scipy.stats import trim_mean
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from harness import *

AF = folds("artist"); FF = ff_split()
only = sys.argv[1:]
OUT = "exp9.json"
try: results = json.load(open(OUT))
except Exception: results = []
def report(name, fp):
    if not only and any(r["name"] == name for r in results): return
    r, _ = evaluate(fp, AF, name); f, _ = evaluate(fp, FF, name)
    r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
    results[:] = [q for q in results if q["name"] != name] + [r]; json.dump(results, open(OUT, "w"), indent=1)

def cw(tr):  # equal total weight per genre (the shipped w=class)
    y = Y[tr]; w = np.ones(len(tr))
    for c in np.unique(y): w[y == c] /= w[y == c].sum()
    return w * len(tr) / w.sum()

def softmax(d):
    d = d - d.max(1, keepdims=True); e = np.exp(d); return e / e.sum(1, keepdims=True)

def make_fp(X, clf="lr", C=0.001, pca=None, l2=False, alpha=1.0):
    def fp(tr, te):
        sc = StandardScaler().fit(X[tr]); A, B = sc.transform(X[tr]), sc.transform(X[te])
        if pca:
            p = PCA(n_components=pca, whiten=True, random_state=0).fit(A); A, B = p.transform(A), p.transform(B)
        if l2:
            d = A.shape[1]
            A = A / np.linalg.norm(A, axis=1, keepdims=True) * np.sqrt(d)
            B = B / np.linalg.norm(B, axis=1, keepdims=True) * np.sqrt(d)
        if clf == "lr":
            m = LogisticRegression(C=C, max_iter=5000).fit(A, Y[tr], sample_weight=cw(tr)); return m.predict_proba(B)
        if clf == "lda":
            cl = np.unique(Y[tr]); m = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=np.full(len(cl), 1 / len(cl))).fit(A, Y[tr])
            P = np.zeros((len(B), 10)); P[:, cl] = m.predict_proba(B); return P
        if clf == "ridge":
            m = RidgeClassifier(alpha=alpha).fit(A, Y[tr], sample_weight=cw(tr)); return softmax(m.decision_function(B))
    return fp

P3 = ("mean_pool", "max_pool", "penultimate")
def matrix(agg="mean"):
    return np.hstack([song_matrix("orig", 93, P3, "sqrt", agg), song_matrix("orig", 93, ("taggram",), "none", agg)])

def matrix_custom(pool):
    out = []
    for stem in STEMS:
        w = windows("orig", stem); idx = select_windows(w, 93)
        x = np.hstack([features(w, idx, P3, "sqrt"), features(w, idx, ("taggram",), "none")])
        out.append(pool(x))
    return np.stack(out)

def want(k): return not only or k in only

X = matrix()
if want("base"): report("baseline mm+pen+tagsraw w=class C=0.001", make_fp(X))
if want("std"):
    XS = matrix("std")
    for C in (0.0005, 0.001, 0.002): report(f"mean+std pooling LR C={C}", make_fp(XS, C=C))
if want("lda"):
    report("shrinkage LDA (std-scaled, auto shrink, uniform priors)", make_fp(X, "lda"))
    for k in (64, 128): report(f"PCA{k}-whiten + shrinkage LDA", make_fp(X, "lda", pca=k))
if want("l2"):
    for C in (0.0005, 0.001, 0.002, 0.005): report(f"std-scale + L2norm*sqrt(d) LR C={C}", make_fp(X, C=C, l2=True))
if want("pca"):
    for k in (64, 128):
        for C in (0.001, 0.01): report(f"PCA{k}-whiten LR C={C}", make_fp(X, C=C, pca=k))
        for a in (100.0, 1000.0): report(f"PCA{k}-whiten Ridge alpha={a}", make_fp(X, "ridge", pca=k, alpha=a))
if want("pool"):
    XM = matrix_custom(lambda x: np.median(x, 0))
    for C in (0.0005, 0.001, 0.002): report(f"median pooling LR C={C}", make_fp(XM, C=C))
    XT = matrix_custom(lambda x: trim_mean(x, 0.2, axis=0))
    for C in (0.001,): report(f"20% trimmed-mean pooling LR C={C}", make_fp(XT, C=C))

# --- extra, cheap ideas ---
DIMS = [753, 753, 200, 50]
def block_scaled(X, s):  # weights per block (after standard scaling), applied as a fixed column scale
    return np.concatenate([np.full(d, v) for d, v in zip(DIMS, s)])
def make_fp_block(X, s, C):
    col = block_scaled(X, s)
    def fp(tr, te):
        sc = StandardScaler().fit(X[tr]); A, B = sc.transform(X[tr]) * col, sc.transform(X[te]) * col
        m = LogisticRegression(C=C, max_iter=5000).fit(A, Y[tr], sample_weight=cw(tr)); return m.predict_proba(B)
    return fp
if want("block"):
    eq = [np.sqrt(sum(DIMS) / 4 / d) for d in DIMS]  # each block equal total variance
    for C in (0.0005, 0.001, 0.002): report(f"block-equalised (each block 1/4 of variance) LR C={C}", make_fp_block(X, eq, C))
    for C in (0.001,): report(f"taggram block x3 LR C={C}", make_fp_block(X, [1, 1, 1, 3], C))
if want("hop"):
    for hop in (31, 62):
        XH = np.hstack([song_matrix("orig", hop, P3, "sqrt"), song_matrix("orig", hop, ("taggram",), "none")])
        report(f"hop {hop} mean pooling LR C=0.001", make_fp(XH))
if want("more"):
    for k in (32, 48, 96): report(f"PCA{k}-whiten + shrinkage LDA", make_fp(X, "lda", pca=k))
    for C in (0.0002, 0.0003): report(f"std-scale + L2norm*sqrt(d) LR C={C}", make_fp(X, C=C, l2=True))
    for C in (0.0005,): report(f"baseline C={C}", make_fp(X, C=C))
    XS2 = np.hstack([X, song_matrix("orig", 93, ("taggram",), "none", "std")[:, 50:], song_matrix("orig", 93, ("penultimate",), "sqrt", "std")[:, 200:]])
    for C in (0.001,): report(f"mean + std(taggram,penultimate) LR C={C}", make_fp(XS2, C=C))
if want("lda2"):
    from sklearn.model_selection import GroupKFold
    from genre_model.dataset import regroup
    ART = np.array([t.group for t in regroup(TRACKS, "artist")])
    for k in (16, 24, 40): report(f"PCA{k}-whiten + shrinkage LDA", make_fp(X, "lda", pca=k))
    for C in (0.01, 0.1): report(f"PCA32-whiten LR C={C}", make_fp(X, C=C, pca=32))
    report("PCA32-whiten + shrinkage LDA + L2norm", make_fp(X, "lda", pca=32, l2=True))
    def nested(ks=(16, 24, 32, 48, 64)):
        def fp(tr, te):
            gkf = GroupKFold(n_splits=4); score = {}
            for k in ks:
                acc = []
                for itr, ite in gkf.split(tr, Y[tr], ART[tr]):
                    P = make_fp(X, "lda", pca=k)(tr[itr], tr[ite]); yt = Y[tr[ite]]
                    acc.append(np.mean([np.mean(P[yt == c].argmax(1) == c) for c in np.unique(yt)]))
                score[k] = np.mean(acc)
            kb = max(score, key=score.get); print("  chosen k", kb, flush=True)
            return make_fp(X, "lda", pca=kb)(tr, te)
        return fp
    report("PCA-whiten + shrinkage LDA, k nested-selected {16..64} by inner artist CV", nested())
