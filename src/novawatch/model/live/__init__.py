"""The running model service, without HTTP: the consume loop, the change feed, the query view, health and
metrics, source lookups.

:class:`~novawatch.model.live.runtime.ModelRuntime` owns a :class:`~novawatch.model.cluster.ClusterModel` and
listens to its change events; the HTTP app (:mod:`novawatch.api.model_app`) only reads what it keeps.
"""

from novawatch.model.live.feed import ChangeFeed, Expired, WatchEvent
from novawatch.model.live.lookups import SourceWorker
from novawatch.model.live.runtime import ModelRuntime
from novawatch.model.live.state import ModelState, NotificationNote, instance_json, node_json
from novawatch.model.live.view import InstanceQuery, NodeQuery, StoreView

__all__ = [
    "ChangeFeed",
    "Expired",
    "InstanceQuery",
    "ModelRuntime",
    "ModelState",
    "NodeQuery",
    "NotificationNote",
    "SourceWorker",
    "StoreView",
    "WatchEvent",
    "instance_json",
    "node_json",
]
