"""Round 8: the shipped LR and the RBF-SVM recipe averaged."""
import json, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC
from harness import *
AF = folds("artist"); FF = ff_split()
X1 = np.hstack([song_matrix("orig", 93, ("mean_pool", "max_pool", "penultimate"), "sqrt"), song_matrix("orig", 93, ("taggram",), "none")])
X2 = song_matrix("orig", 186, ("mean_pool",), "none")
results = []
for w in (0.5, 0.3):
    def fp(tr, te):
        a = make_pipeline(StandardScaler(), LogisticRegression(C=0.001, max_iter=5000, class_weight="balanced")).fit(X1[tr], Y[tr]).predict_proba(X1[te])
        b = make_pipeline(StandardScaler(), SVC(C=1, probability=True, class_weight="balanced", random_state=0)).fit(X2[tr], Y[tr]).predict_proba(X2[te])
        return w * b + (1 - w) * a
    r, _ = evaluate(fp, AF, f"LR (shipped) + RBF-SVM (mean_pool) averaged, svm weight {w}"); f, _ = evaluate(fp, FF, "ff")
    r["ff_acc"], r["ff_bal"] = f["accuracy"], f["balanced"]
    print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True); results.append(r)
json.dump(results, open("exp8.json", "w"), indent=1)
