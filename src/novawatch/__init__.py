"""novawatch: Nova notifications, a compute service that emits them, and a live data model."""

__version__ = "0.1.0"
