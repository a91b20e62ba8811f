"""Round 1: today's recipe choices re-tested under artist grouping, song-mean features, logistic heads."""
import sys, json, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC
from harness import *

AF = folds("artist"); FF = ff_split()
results = []
def run(name, X, make):
    def fp(tr, te):
        clf = make(); clf.fit(X[tr], Y[tr]); return clf.predict_proba(X[te])
    r, _ = evaluate(fp, AF, name); f, _ = evaluate(fp, FF, name)
    r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
    results.append(r)

logreg = lambda C, cw=None: (lambda: make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight=cw)))
for hop in ("n8", 186, 93, 31):
    for tf in ("none", "sqrt"):
        X = song_matrix("orig", hop, ("mean_pool", "max_pool"), tf)
        for C in (0.001, 0.01, 0.1):
            run(f"meanmax {tf} hop={hop} logreg C={C}", X, logreg(C))
X = song_matrix("orig", 93, ("mean_pool", "max_pool"), "sqrt")
run("meanmax sqrt hop=93 logreg C=0.01 balanced", X, logreg(0.01, "balanced"))
for parts in (("mean_pool",), ("max_pool",), ("penultimate",), ("taggram",), ("mean_pool", "max_pool", "penultimate"),
              ("mean_pool", "max_pool", "penultimate", "taggram")):
    X = song_matrix("orig", 93, parts, "sqrt")
    for C in (0.003, 0.01, 0.03):
        run(f"{'+'.join(parts)} sqrt hop=93 logreg C={C}", X, logreg(C))
# the 20-line recipe: mean-pooled window embeddings, standardised, RBF SVM
for parts in (("mean_pool",), ("mean_pool", "max_pool")):
    X = song_matrix("orig", 186, parts, "none")
    for C in (1, 10):
        run(f"{'+'.join(parts)} none hop=186 rbf-svm C={C}", X, lambda C=C: make_pipeline(StandardScaler(), SVC(C=C, probability=True, class_weight="balanced")))
json.dump(results, open("exp1.json", "w"), indent=1)
