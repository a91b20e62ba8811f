"""Round 7: the previously shipped recipe (Keras: 5 heads, bags, mixup, early stopping on an inner split), artist-grouped."""
import sys, json, numpy as np
import keras
from keras import layers
from harness import *
from genre_model.dataset import regroup, split_tracks

AF = folds("artist"); FF = ff_split()
REG = regroup(TRACKS, "artist")

def build_head(d, n, mean, variance, dropout=0.5, l2=1e-3, name="head"):
    inputs = keras.Input(shape=(d,))
    x = layers.Normalization(mean=mean, variance=variance)(inputs)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, layers.Dense(n, kernel_regularizer=keras.regularizers.l2(l2))(x), name=name)

class Bags(keras.utils.PyDataset):
    def __init__(self, emb, y, n, batch, steps, mixup, seed):
        super().__init__(); self.emb, self.y, self.n, self.batch, self.steps, self.mixup = emb, np.asarray(y), n, batch, steps, mixup
        self.rng = np.random.default_rng(seed); self.by = [np.flatnonzero(self.y == c) for c in range(n)]; self.present = [c for c in range(n) if len(self.by[c])]
    def __len__(self): return self.steps
    def __getitem__(self, _):
        cls = self.rng.choice(self.present, size=self.batch); idx = [int(self.rng.choice(self.by[c])) for c in cls]
        def bag(i):
            e = self.emb[i]; k = int(self.rng.integers(1, len(e) + 1)); s = int(self.rng.integers(0, len(e) - k + 1)); return e[s:s + k].mean(0)
        x = np.stack([bag(i) for i in idx]).astype(np.float32); yy = np.eye(self.n, dtype=np.float32)[cls]
        lam = self.rng.beta(self.mixup, self.mixup, size=(self.batch, 1)).astype(np.float32); perm = self.rng.permutation(self.batch)
        return lam * x + (1 - lam) * x[perm], lam * yy + (1 - lam) * yy[perm]

W = window_lists("orig", 93, ("mean_pool", "max_pool"), "sqrt")
def fp(tr, te):
    inner_tr, inner_va = split_tracks([REG[i] for i in tr], 0.2, 1234)
    pos = {id(REG[i]): i for i in tr}
    itr = [pos[id(t)] for t in inner_tr]; iva = [pos[id(t)] for t in inner_va]
    stacked = np.concatenate([W[i] for i in itr]); xv = np.stack([W[i].mean(0) for i in iva]).astype(np.float32); yv = np.eye(10, dtype=np.float32)[Y[iva]]
    heads = []
    for m in range(5):
        keras.utils.set_random_seed(1234 + m)
        h = build_head(stacked.shape[1], 10, stacked.mean(0), stacked.var(0) + 1e-6)
        h.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.05))
        cb = [keras.callbacks.EarlyStopping("val_loss", patience=30, restore_best_weights=True, start_from_epoch=20),
              keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=10)]
        h.fit(Bags([W[i] for i in itr], Y[itr], 10, 64, 20, 0.2, 1234 + 1000 * m), validation_data=(xv, yv), epochs=300, callbacks=cb, verbose=0)
        heads.append(h)
    xt = np.stack([W[i].mean(0) for i in te]).astype(np.float32)
    z = np.mean([np.asarray(h.predict(xt, verbose=0)) for h in heads], 0)
    z = np.exp(z - z.max(1, keepdims=True)); return z / z.sum(1, keepdims=True)

r, _ = evaluate(fp, AF, "previous recipe: 5 Keras heads, bags+mixup, early stop (meanmax sqrt)")
f, _ = evaluate(fp, FF, "ff")
r["ff_acc"], r["ff_bal"], r["ff_acc_ci"], r["ff_bal_ci"] = f["accuracy"], f["balanced"], f["acc_ci"], f["bal_ci"]
print(fmt(r), f"| ff {f['accuracy']:.3f} / {f['balanced']:.3f}", flush=True)
json.dump([r], open("exp7.json", "w"), indent=1)
