"""The compute service: the cloud's truth in a database, Nova's actions on a fake hypervisor, Nova's notifications.

``open_service(url, notifier)`` gives a :class:`~novawatch.compute.service.ComputeService`; see docs/compute.md.
"""
