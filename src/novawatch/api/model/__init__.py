"""The model service's API by resource: one router module each, its schemas beside its routes (see
docs/api.md, "Code layout")."""
