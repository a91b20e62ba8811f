"""Embed real non-GTZAN audio from Debian game packages: music (false-positive check) and sound effects/voices."""
import glob, os, sys, numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from genre_model.audio import load_audio
from genre_model.errors import AudioError
from genre_model.features import MUSICNN_FEATURES as CFG, log_mel, window_starts, cut_windows
from backbone import Backbone
bb = Backbone(threads=1)
sets = {
  "realmusic": sorted(glob.glob("/usr/share/games/hedgewars/Data/Music/*.ogg") + glob.glob("/usr/share/games/wesnoth/1.16/data/core/music/*.ogg")
                      + glob.glob("/usr/share/games/frozen-bubble/snd/*zik*.ogg")),
  "realsfx": sorted(list(set(glob.glob("/usr/share/games/frozen-bubble/snd/*.ogg")) - set(glob.glob("/usr/share/games/frozen-bubble/snd/*zik*.ogg")))
                    + glob.glob("/usr/share/games/hedgewars/Data/Sounds/**/*.ogg", recursive=True) + glob.glob("/usr/share/sounds/freedesktop/stereo/*.oga")),
}
for name, files in sets.items():
    os.makedirs(f"emb/{name}", exist_ok=True)
    n = 0
    for f in files:
        try:
            x = load_audio(f, 16000, max_seconds=600)
        except AudioError:
            continue
        if len(x) < CFG.min_samples:
            if name == "realmusic": continue
            x = np.tile(x, int(np.ceil(CFG.min_samples * 1.3 / len(x))))  # loop short effects to one window
        spec = log_mel(x, CFG)
        starts = window_starts(spec.shape[-1], CFG, hop_frames=187)
        out = bb(cut_windows(spec, CFG, starts))
        tag = f.replace("/usr/share/", "").replace("/", "_")
        np.savez(f"emb/{name}/{tag}.npz", max_pool=out["a753"], mean_pool=out["b753"], penultimate=out["penultimate"],
                 taggram=out["taggram"], starts=starts, seconds=len(x) / 16000)
        n += 1
    print(name, n, flush=True)
