"""The HTTP face of novawatch: the compute service's and the model service's REST APIs, the watch
stream of model changes, metrics and the dashboard. Only this package and ``cli`` know HTTP."""
