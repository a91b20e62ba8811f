"""The Discord adapter: the only package that imports discord.py.

It parses what Discord sends (slash commands, menus, reactions), calls one function of the
service layer (:mod:`bot`) per event, and renders the outcome (:mod:`.replies` holds every word
members read). ``cli`` is the ``genre-bot`` command, ``client`` the ``AutoShardedBot`` subclass
that is handed storage and inference ready-made, ``cogs`` one feature each.
"""
