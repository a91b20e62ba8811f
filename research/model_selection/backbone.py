"""LiteRT runner for the full musicnn backbone: windows -> dict of mean_pool, max_pool, penultimate, taggram."""
import numpy as np
from ai_edge_litert.interpreter import Interpreter
import os
HERE = os.path.dirname(os.path.abspath(__file__))

class Backbone:
    def __init__(self, threads=2, path=os.path.join(HERE, "backbone.tflite")):
        self.it = Interpreter(model_path=path, num_threads=threads)
        self.inp = self.it.get_input_details()[0]
        self.batch = -1
    def _setup(self, b):
        if b != self.batch:
            self.it.resize_tensor_input(self.inp["index"], [b, 187, 96]); self.it.allocate_tensors(); self.batch = b
            outs = self.it.get_output_details()
            self.map = {}
            for o in outs:
                d = o["shape"][-1]
                self.map.setdefault(d, []).append(o["index"])
    def __call__(self, windows, batch=8):
        """windows (n, 96, 187, 1) model-input layout -> dict."""
        x = np.ascontiguousarray(windows[..., 0].transpose(0, 2, 1), dtype=np.float32)
        res = {k: [] for k in ("a753", "b753", "penultimate", "taggram")}
        for i in range(0, len(x), batch):
            xb = x[i:i+batch]
            self._setup(len(xb))
            self.it.set_tensor(self.inp["index"], xb); self.it.invoke()
            a, b = self.map[753]
            res["a753"].append(self.it.get_tensor(a).copy()); res["b753"].append(self.it.get_tensor(b).copy())
            res["penultimate"].append(self.it.get_tensor(self.map[200][0]).copy())
            res["taggram"].append(self.it.get_tensor(self.map[50][0]).copy())
        return {k: np.concatenate(v) for k, v in res.items()}
