"""The compute service's ``/v1`` API by resource: one router module each, its schemas beside its routes
(see docs/api.md, "Code layout")."""
