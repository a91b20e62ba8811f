"""Cogs: one feature each (classification, feedback, administration)."""
