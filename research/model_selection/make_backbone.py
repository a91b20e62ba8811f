"""Export the full MSD musicnn backbone (all four outputs) to LiteRT for fast embedding."""
import sys, numpy as np
from genre_model.musicnn import load_msd_musicnn_model
from genre_model.artifact import to_tflite
import keras
m = load_msd_musicnn_model()
inp = keras.Input((187, 96))
out = m(inp)
model = keras.Model(inp, [out["mean_pool"], out["max_pool"], out["penultimate"], out["taggram"]])
open("backbone.tflite", "wb").write(to_tflite(model))
x = np.random.default_rng(0).random((2, 187, 96)).astype("float32") * 3
ref = model.predict(x, verbose=0)
np.savez("backbone_ref.npz", x=x, *ref)
print("ok", [r.shape for r in ref])
