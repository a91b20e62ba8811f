"""Round 5: MSD_vgg features, musicnn+vgg, view ensembles."""
import sys, json, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from harness import *

AF = folds("artist"); FF = ff_split()
results = []
def report(name, fp):
    r, _ = evaluate(fp, AF, name); f, _ = evaluate(fp, FF, name)
    r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
    results.append(r); json.dump(results, open("exp5.json", "w"), indent=1)

def vgg_matrix(parts, transform="sqrt"):
    out = []
    for stem in STEMS:
        with np.load(f"{EMB}/vgg/{stem}.npz") as z:
            x = np.concatenate([z[p] for p in parts], axis=1).astype(np.float64)
        if transform == "sqrt": x = np.sign(x) * np.sqrt(np.abs(x))
        out.append(x.mean(0))
    return np.stack(out)

LR = lambda C: (lambda: make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced")))
def song(X, C):
    def fp(tr, te):
        clf = LR(C)(); clf.fit(X[tr], Y[tr]); return clf.predict_proba(X[te])
    return fp
def ensemble(views):
    def fp(tr, te):
        ps = []
        for X, C in views:
            clf = LR(C)(); clf.fit(X[tr], Y[tr]); ps.append(np.log(clf.predict_proba(X[te]) + 1e-9))
        z = np.mean(ps, 0); z = np.exp(z - z.max(1, keepdims=True)); return z / z.sum(1, keepdims=True)
    return fp

V5 = vgg_matrix(("pool5_mean", "pool5_max")); V45 = vgg_matrix(("pool4_mean", "pool4_max", "pool5_mean", "pool5_max"))
VT = vgg_matrix(("taggram",), "none")
MM = song_matrix("orig", 93, ("mean_pool", "max_pool"), "sqrt")
PEN = song_matrix("orig", 93, ("penultimate",), "sqrt")
TAG = song_matrix("orig", 93, ("taggram",), "none")
for C in (0.01, 0.03, 0.1):
    report(f"vgg pool5 sqrt balanced C={C}", song(V5, C))
for C in (0.01, 0.03):
    report(f"vgg pool4+5 sqrt balanced C={C}", song(V45, C))
report("vgg taggram balanced C=1", song(VT, 1.0))
for C in (0.003, 0.01):
    report(f"musicnn meanmax + vgg pool4+5 concat balanced C={C}", song(np.hstack([MM, V45]), C))
report("ensemble: meanmax C=.01 | vgg45 C=.03", ensemble([(MM, 0.01), (V45, 0.03)]))
report("ensemble: meanmax C=.01 | pen C=.03 | tags C=1", ensemble([(MM, 0.01), (PEN, 0.03), (TAG, 1.0)]))
report("ensemble: meanmax | pen | tags | vgg45", ensemble([(MM, 0.01), (PEN, 0.03), (TAG, 1.0), (V45, 0.03)]))
