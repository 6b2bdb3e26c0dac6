"""Sources the data model can bootstrap and audit from, beyond the compute service itself."""
