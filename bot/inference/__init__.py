"""Inference backends: classify an upload in a process that holds the model.

``base.py`` is the protocol and the result type, ``models.py`` the model store (versions ->
artifacts); ``local.py`` (a process pool, the default) and ``ray_serve.py`` (a Ray Serve
deployment) implement it; ``worker.py`` is the code that runs next to the model.
"""
