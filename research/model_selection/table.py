"""Gather the exp*.json results into the markdown table of docs/model_selection.md."""
import glob
import json
import os

ROUNDS = {
    "exp1.json": "today's choices re-tested: windows, square root, pooling, parts, C; the 20-line RBF-SVM recipe",
    "exp2-window.json": "window-level training, song = mean of window logits",
    "exp4.json": "per-genre and per-artist weights; nuisance-attribute projection of artist directions",
    "exp5.json": "MSD_vgg features, musicnn + vgg, view ensembles",
    "exp6-grid.json": "the chosen family (pooled + penultimate + tags), C and weighting",
    "exp6-aug.json": "the chosen family with two augmented recordings per training track",
    "exp7.json": "the previously shipped recipe (5 Keras heads, bags, mixup, early stopping)",
    "exp8.json": "the shipped logistic head averaged with the RBF-SVM recipe",
    "exp9.json": "other poolings and heads: mean+std, median, L2, PCA-whitening, shrinkage LDA, ridge",
}

here = os.path.dirname(os.path.abspath(__file__))
print("# Model selection on artists the model never heard\n")
print("Folds grouped by artist (near-duplicates together), 5 folds x 3 fold seeds on the 304 GTZAN")
print("excerpts; `ff` = trained on the fault-filtered train part, scored on its valid part (79 tracks,")
print("no shared artist). Brackets: 95 % bootstrap intervals resampling tracks. Features are musicnn")
print("(MSD) window embeddings, averaged over a song's windows unless stated; `sqrt` = signed square")
print("root per window; heads are standardised logistic regressions unless stated; `balanced` /")
print("`w=class` = every genre weighs the same. Made by `research/model_selection` (see its README).\n")
for name, title in ROUNDS.items():
    path = os.path.join(here, name)
    if not os.path.exists(path):
        continue
    print(f"## {title}\n")
    print("| variant | accuracy | balanced accuracy | ff accuracy | ff balanced |")
    print("|---|---|---|---|---|")
    for r in json.load(open(path)):
        print(f"| {r['name'].replace(' | ', ' + ')} | {r['accuracy']:.3f} [{r['acc_ci'][0]:.3f}, {r['acc_ci'][1]:.3f}] | "
              f"{r['balanced']:.3f} [{r['bal_ci'][0]:.3f}, {r['bal_ci'][1]:.3f}] | "
              f"{r.get('ff_acc', float('nan')):.3f} | {r.get('ff_bal', float('nan')):.3f} |")
    print()
