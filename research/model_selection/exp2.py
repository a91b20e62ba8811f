"""Round 2: balancing, normalisation, window-level training, augmentation, other linear heads."""
import sys, json, numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler, Normalizer
from sklearn.pipeline import make_pipeline
from harness import *

AF = folds("artist"); FF = ff_split()
only = sys.argv[1:] 
results = []
def report(name, fp):
    if only and not any(o in name for o in only): return
    r, _ = evaluate(fp, AF, name); f, _ = evaluate(fp, FF, name)
    r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
    results.append(r)
    json.dump(results, open(f"exp2{'-' + '_'.join(only) if only else ''}.json", "w"), indent=1)

def song_level(X, make, aug=None):
    def fp(tr, te):
        Xtr, ytr = X[tr], Y[tr]
        if aug is not None:
            Xtr = np.concatenate([Xtr] + [A[tr] for A in aug]); ytr = np.concatenate([ytr] * (1 + len(aug)))
        clf = make(); clf.fit(Xtr, ytr); return clf.predict_proba(X[te])
    return fp

def window_level(W, make, aug=None, combine="logit"):
    def fp(tr, te):
        lists = [W[i] for i in tr]; ys = [Y[i] for i in tr]
        if aug is not None:
            for A in aug: lists += [A[i] for i in tr]; ys += [Y[i] for i in tr]
        Xtr = np.concatenate(lists); ytr = np.concatenate([np.full(len(w), y) for w, y in zip(lists, ys)])
        clf = make(); clf.fit(Xtr, ytr)
        out = []
        for i in te:
            if combine == "logit":
                z = clf.decision_function(W[i]).mean(0); z = np.exp(z - z.max()); out.append(z / z.sum())
            else:
                out.append(clf.predict_proba(W[i]).mean(0))
        return np.array(out)
    return fp

LR = lambda C, cw="balanced", pre=(): (lambda: make_pipeline(*pre, StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight=cw)))
MM = ("mean_pool", "max_pool")
X = song_matrix("orig", 93, MM, "sqrt")
for C in (0.003, 0.01, 0.03):
    report(f"song meanmax sqrt balanced C={C}", song_level(X, LR(C)))
report("song meanmax sqrt balanced C=0.01 l2norm", song_level(X, LR(0.01, pre=(StandardScaler(), Normalizer()))))
for n in (32, 64, 128):
    report(f"song meanmax sqrt PCA{n} balanced C=0.1", song_level(X, lambda n=n: make_pipeline(StandardScaler(), PCA(n, random_state=0), LogisticRegression(C=0.1, max_iter=5000, class_weight="balanced"))))
report("song meanmax sqrt LDA shrinkage", song_level(X, lambda: make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))))
XT = song_matrix("orig", 93, MM + ("taggram",), "sqrt")
report("song meanmax+tags sqrt balanced C=0.01", song_level(XT, LR(0.01)))
XS = song_matrix("orig", 93, MM, "sqrt", agg="meanstd")
report("song meanmax sqrt mean+std balanced C=0.01", song_level(XS, LR(0.01)))
W = window_lists("orig", 93, MM, "sqrt")
for C in (0.001, 0.003, 0.01):
    report(f"window meanmax sqrt hop93 balanced C={C} logit-mean", window_level(W, LR(C)))
report("window meanmax sqrt hop93 balanced C=0.003 prob-mean", window_level(W, LR(0.003), combine="prob"))
augs = [s for s in sources() if s != "orig"]
if augs:
    XA = [song_matrix(s, 93, MM, "sqrt") for s in augs]
    for C in (0.003, 0.01):
        report(f"song meanmax sqrt balanced C={C} +{len(augs)} aug", song_level(X, LR(C), aug=XA))
    WA = [window_lists(s, 93, MM, "sqrt") for s in augs]
    report(f"window meanmax sqrt hop93 balanced C=0.003 +{len(augs)} aug", window_level(W, LR(0.003), aug=WA))
