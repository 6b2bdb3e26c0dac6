"""Runs the workload in Nova's own functional-test cloud and writes what Nova emitted and showed.

Executed inside the Nova environment that ``check.py`` builds (``nova`` with its functional-test
requirements), never in novawatch's::

    .venv-nova/<version>/bin/python interop/nova/runner.py --out capture.json [--log nova.log] [--serve DIR]

The cloud is Nova's in-process one (``nova.test.TestCase``): API (wsgi-intercept), conductor, scheduler,
two computes ``host1`` and ``host2`` with the fake virt driver, Placement, and Nova's Glance, Neutron and
Cinder fixtures, configured with ``[notifications] notification_format = both``, ``notify_on_state_change
= vm_and_task_state`` and ``bdms_in_notifications = true``.

Notifications are captured where oslo.messaging hands them to the transport: Nova's two notifiers are
real ``oslo_messaging.Notifier`` objects with the ``messagingv2`` driver on the fake transport, as
``nova.rpc.init`` makes them, so each message is the dict oslo.messaging sends (``message_id``,
``publisher_id``, ``event_type``, ``priority``, ``payload``, ``timestamp``), with the topic it was sent
on (``versioned_notifications.info``, ``notifications.info``, ...). Versioned and legacy messages share
one sequence number: their emission order.

With ``--serve DIR`` Nova's API is also served over HTTP on a free loopback port while the cloud runs,
and at each API view (``before``, ``after``) the runner writes ``DIR/<view>.url`` (the compute endpoint)
and waits for ``DIR/<view>.done``: meanwhile a client (``check.py``) reads the cloud through Nova's real
API, as ``novawatch model serve --compute-url`` would. Requests authenticate with ``X-Auth-Token:
USER:PROJECT`` (``admin:...`` is an admin), which stands in for the Keystone token check the
functional-test cloud leaves out.

The output format (``novawatch.nova-capture/1``) is described in docs/openstack.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Nova's functional tests run under eventlet: nova.tests applies Nova's monkey patching when imported, which
# must come before the rest of Nova and oslo is imported.
import nova.tests
import oslo_messaging as messaging
from oslo_serialization import jsonutils

import nova.conf
from nova import rpc, test
from nova import utils as nova_utils
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import fixtures as func_fixtures
from nova.tests.functional import integrated_helpers
from nova.tests.functional.api import client as api_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload as wl

FORMAT = "novawatch.nova-capture/1"
#: Microversion of the hypervisor view: the newest that still reports capacity (2.88 removed it).
HYPERVISORS_MICROVERSION = "2.87"
#: The logical images and volumes of the workload, as the ids Nova's Glance and Cinder fixtures know.
IMAGE_IDS = {"default": "155d900f-4e14-4e4c-a73d-069cbf4541e6", "other": "a2459075-d96c-40d5-893e-577ff92e721c"}
VOLUME_IDS = {"boot": nova_fixtures.CinderFixture.IMAGE_BACKED_VOL,
              "old": nova_fixtures.CinderFixture.SWAP_OLD_VOL,
              "new": nova_fixtures.CinderFixture.SWAP_NEW_VOL}
#: How long a step may take before the run fails, and how long the stream must stay quiet to end a step.
STEP_TIMEOUT = float(os.environ.get("NOVAWATCH_NOVA_STEP_TIMEOUT", "60"))
QUIET = 0.5

NOTIFICATION_SETTINGS = {"notification_format": "both", "notify_on_state_change": "vm_and_task_state",
                         "bdms_in_notifications": True}


class Capture:
    """Every notification handed to the fake transport, in emission order, with its topic."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, topic: str, message: dict[str, Any]) -> None:
        # The dict as it goes on the wire (datetimes and the like already primitives, a JSON round trip).
        wire = json.loads(jsonutils.dumps(message))
        with self._lock:
            self.records.append({"seq": len(self.records), "topic": topic, "message": wire})

    def __len__(self) -> int:
        return len(self.records)

    def events_since(self, start: int) -> list[str]:
        return [r["message"]["event_type"] for r in self.records[start:]]


class StepFailed(AssertionError):
    pass


class NovaCloud(test.TestCase, integrated_helpers.InstanceHelperMixin):
    """Nova's in-process cloud, the workload's driver for it, and the capture."""

    REQUIRES_LOCKING = True
    capture: Capture
    out_path: Path
    log_path: Path | None = None
    serve_dir: Path | None = None

    def setUp(self) -> None:
        self.flags(compute_driver="fake.FakeDriver")
        self.flags(group="notifications", **NOTIFICATION_SETTINGS)
        # The fake driver never sends network-vif-plugged: do not wait for it.
        self.flags(live_migration_wait_for_vif_plug=False, group="compute")
        self.flags(shelved_offload_time=-1)  # shelve leaves the server on its host; offload is its own step
        # No quota: the "huge" flavor is to fail in scheduling (no valid host), not in the API.
        self.flags(ram=-1, cores=-1, instances=-1, group="quota")
        super().setUp()
        self._install_notifiers()
        self.api_fixture = self.useFixture(nova_fixtures.OSAPIFixture(api_version="v2.1"))
        self.api = self.api_fixture.api
        self.admin_api = self.api_fixture.admin_api
        self.api.microversion = "latest"
        self.admin_api.microversion = "latest"
        self.glance = self.useFixture(nova_fixtures.GlanceFixture(self))
        self.useFixture(func_fixtures.PlacementFixture())
        self.neutron = self.useFixture(nova_fixtures.NeutronFixture(self))
        self.cinder = self.useFixture(nova_fixtures.CinderFixture(self))
        self.useFixture(nova_fixtures.AllServicesCurrent())
        self.start_service("conductor")
        self.start_service("scheduler")
        for host in wl.HOSTS:
            self._start_compute(host)
        self.servers: dict[str, str] = {}  # logical name -> server id
        self.flavor_ids: dict[str, str] = {}

    # --- the notifiers ----------------------------------------------------------------------------------

    def _install_notifiers(self) -> None:
        """Nova's notifiers as nova.rpc.init makes them for ``both``, on the fake transport, captured."""
        capture = self.capture

        def send_notification(driver: Any, target: Any, ctxt: Any, message: dict[str, Any], version: Any,
                              retry: Any = None) -> None:
            capture.record(target.topic, message)

        self.stub_out("oslo_messaging._drivers.impl_fake.FakeDriver.send_notification", send_notification)
        self.flags(driver=["messagingv2"], group="oslo_messaging_notifications")
        serializer = rpc.RequestContextSerializer(rpc.JsonPayloadSerializer())
        transport = rpc.NOTIFICATION_TRANSPORT
        conf = nova.conf.CONF
        legacy = messaging.Notifier(transport, serializer=serializer,
                                    topics=conf.oslo_messaging_notifications.topics)
        versioned = messaging.Notifier(transport, serializer=serializer,
                                       topics=conf.notifications.versioned_notifications_topics)
        self.stub_out("nova.rpc.LEGACY_NOTIFIER", legacy)
        self.stub_out("nova.rpc.NOTIFIER", versioned)

    # --- waiting ----------------------------------------------------------------------------------------

    def _until(self, what: str, predicate: Any, timeout: float = STEP_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.05)

    def _wait_events(self, start: int, *events: str) -> None:
        """Wait until each of ``events`` was emitted since notification ``start``."""
        for event in events:
            self._until(f"notification {event}", lambda e=event: e in self.capture.events_since(start))

    def _settle(self) -> None:
        """Wait until no notification came for QUIET seconds: the step's trailing ones belong to it."""
        last, since = len(self.capture), time.monotonic()
        deadline = since + STEP_TIMEOUT
        while time.monotonic() - since < QUIET:
            time.sleep(0.05)
            if len(self.capture) != last:
                last, since = len(self.capture), time.monotonic()
            if time.monotonic() > deadline:
                raise StepFailed("notifications never stopped coming")

    def _server(self, name: str) -> dict[str, Any]:
        return self.admin_api.get_server(self.servers[name])

    def _wait_server(self, name: str, status: str | tuple[str, ...] | None = None) -> dict[str, Any]:
        """Wait until the server has (one of) ``status`` and no task state."""
        wanted = (status,) if isinstance(status, str) else status

        def matches() -> dict[str, Any] | None:
            server = self._server(name)
            ok = (wanted is None or server["status"] in wanted) and server["OS-EXT-STS:task_state"] is None
            return server if ok else None

        return self._until(f"{name} to have status {wanted} and no task", matches)

    def _service_id(self, host: str) -> str:
        return self.admin_api.get_services(host=host, binary="nova-compute")[0]["id"]

    # --- the actions ------------------------------------------------------------------------------------

    def create_flavors(self) -> None:
        for name, sizes in wl.FLAVORS.items():
            body = {"flavor": {"name": name, "ram": sizes["ram"], "vcpus": sizes["vcpus"], "disk": sizes["disk"],
                               "OS-FLV-EXT-DATA:ephemeral": sizes["ephemeral"], "swap": sizes["swap"]}}
            self.flavor_ids[name] = self.admin_api.post_flavor(body)["id"]

    def do(self, step: wl.Step) -> None:
        getattr(self, f"act_{step.action}")(step)

    def _action(self, step: wl.Step, body: dict[str, Any], api: Any = None) -> int:
        start = len(self.capture)
        (api or self.api).post_server_action(self.servers[step.server or ""], body)
        return start

    def act_boot(self, step: wl.Step) -> None:
        name = step.server or ""
        server: dict[str, Any] = {"name": name, "flavorRef": self.flavor_ids[step.args["flavor"]],
                                  "networks": [{"uuid": self.neutron.network_1["id"]}]}
        if step.args.get("volume"):
            server["block_device_mapping_v2"] = [{"boot_index": 0, "uuid": VOLUME_IDS[step.args["volume"]],
                                                  "source_type": "volume", "destination_type": "volume"}]
        else:
            server["imageRef"] = IMAGE_IDS[step.args.get("image") or "default"]
        api = self.api
        if step.host:
            server["host"] = step.host  # microversion 2.74: the scheduler still checks it
            api = self.admin_api
        if step.args.get("fails_once"):
            self._fail_first_spawn(name)
        start = len(self.capture)
        created = api.post_server({"server": server})
        self.servers[name] = created["id"]
        if step.args.get("fails"):
            self._wait_events(start, "compute_task.build_instances.error")
            self._wait_server(name, status="ERROR")
        else:
            self._wait_events(start, "instance.create.end")
            self._wait_server(name, status="ACTIVE")

    def act_resize(self, step: wl.Step) -> None:
        start = self._action(step, {"resize": {"flavorRef": self.flavor_ids[step.args["flavor"]]}})
        self._wait_events(start, "instance.resize_finish.end")
        self._wait_server(step.server or "", status="VERIFY_RESIZE")

    def act_confirm_resize(self, step: wl.Step) -> None:
        start = self._action(step, {"confirmResize": None})
        self._wait_events(start, "instance.resize_confirm.end")
        self._wait_server(step.server or "", status=("ACTIVE", "SHUTOFF"))  # as it was before the resize

    def act_revert_resize(self, step: wl.Step) -> None:
        start = self._action(step, {"revertResize": None})
        self._wait_events(start, "instance.resize_revert.end")
        self._wait_server(step.server or "", status=("ACTIVE", "SHUTOFF"))

    def act_migrate(self, step: wl.Step) -> None:
        body = {"migrate": {"host": step.host} if step.host else None}
        start = self._action(step, body, self.admin_api)
        self._wait_events(start, "instance.resize_finish.end")
        self._wait_server(step.server or "", status="VERIFY_RESIZE")

    def _fail_first_spawn(self, name: str) -> None:
        """The fake hypervisor fails the first spawn of server ``name`` (Nova then reschedules the build)."""
        from nova.virt import fake as fake_virt

        spawn = fake_virt.FakeDriver.spawn
        failed: list[str] = []

        def failing_spawn(driver: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
            if instance.display_name == name and not failed:
                failed.append(instance.host)
                raise RuntimeError(f"the hypervisor failed to spawn {name} (injected by the workload)")
            return spawn(driver, context, instance, *args, **kwargs)

        self.stub_out("nova.virt.fake.FakeDriver.spawn", failing_spawn)

    def _fail_live_migration(self, name: str) -> None:
        """The fake hypervisor reports the live migration of ``name`` failed: the source rolls it back."""
        from nova.virt import fake as fake_virt

        migrate = fake_virt.FakeDriver.live_migration

        def failing(driver: Any, context: Any, instance: Any, dest: Any, post_method: Any, recover_method: Any,
                    block_migration: Any = False, migrate_data: Any = None) -> None:
            if instance.display_name != name:
                return migrate(driver, context, instance, dest, post_method, recover_method, block_migration,
                               migrate_data)
            recover_method(context, instance, dest, migrate_data)
            return None

        self.stub_out("nova.virt.fake.FakeDriver.live_migration", failing)

    def act_live_migrate(self, step: wl.Step) -> None:
        name = step.server or ""
        before = self._server(name)["OS-EXT-SRV-ATTR:host"]
        block = step.args.get("block_migration", "auto")
        if step.args.get("fails"):
            self._fail_live_migration(name)
            start = self._action(step, {"os-migrateLive": {"host": step.host, "block_migration": block}},
                                 self.admin_api)
            self._wait_events(start, "instance.live_migration_rollback.end")
            server = self._wait_server(name, status="ACTIVE")
            if server["OS-EXT-SRV-ATTR:host"] != before:
                raise StepFailed(f"{name} left {before} although its live migration failed")
            return
        start = self._action(step, {"os-migrateLive": {"host": step.host, "block_migration": block}},
                             self.admin_api)
        self._wait_events(start, "instance.live_migration_post.end", "instance.live_migration_post_dest.end")
        server = self._wait_server(name, status="ACTIVE")
        if server["OS-EXT-SRV-ATTR:host"] == before:
            raise StepFailed(f"{name} is still on {before} after the live migration")

    def act_shelve(self, step: wl.Step) -> None:
        start = self._action(step, {"shelve": None})
        self._wait_events(start, "instance.shelve.end")
        self._wait_server(step.server or "", status="SHELVED")

    def act_shelve_offload(self, step: wl.Step) -> None:
        start = self._action(step, {"shelveOffload": None}, self.admin_api)
        self._wait_events(start, "instance.shelve_offload.end")
        self._wait_server(step.server or "", status="SHELVED_OFFLOADED")

    def act_unshelve(self, step: wl.Step) -> None:
        start = self._action(step, {"unshelve": None})
        self._wait_events(start, "instance.unshelve.end")
        self._wait_server(step.server or "", status="ACTIVE")

    def act_attach_volume(self, step: wl.Step) -> None:
        start = len(self.capture)
        volume = VOLUME_IDS[step.args["volume"]]
        self.api.post_server_volume(self.servers[step.server or ""], {"volumeAttachment": {"volumeId": volume}})
        self._wait_events(start, "instance.volume_attach.end")
        self._wait_server(step.server or "")

    def act_swap_volume(self, step: wl.Step) -> None:
        server_id = self.servers[step.server or ""]
        # The Cinder fixture reports the old volume as attached to this server while it migrates.
        self.cinder.swap_volume_instance_uuid = server_id
        start = len(self.capture)
        self.admin_api.put_server_volume(server_id, VOLUME_IDS[step.args["volume"]],
                                         VOLUME_IDS[step.args["new_volume"]])
        self._wait_events(start, "instance.volume_swap.end")
        self._wait_server(step.server or "")

    def act_detach_volume(self, step: wl.Step) -> None:
        start = len(self.capture)
        self.api.delete_server_volume(self.servers[step.server or ""], VOLUME_IDS[step.args["volume"]])
        self._wait_events(start, "instance.volume_detach.end")
        self._wait_server(step.server or "")

    def _simple(self, step: wl.Step, body: dict[str, Any], event: str, status: str, api: Any = None) -> None:
        start = self._action(step, body, api)
        self._wait_events(start, event)
        self._wait_server(step.server or "", status=status)

    def act_stop(self, step: wl.Step) -> None:
        self._simple(step, {"os-stop": None}, "instance.power_off.end", "SHUTOFF")

    def act_start(self, step: wl.Step) -> None:
        self._simple(step, {"os-start": None}, "instance.power_on.end", "ACTIVE")

    def act_pause(self, step: wl.Step) -> None:
        self._simple(step, {"pause": None}, "instance.pause.end", "PAUSED")

    def act_unpause(self, step: wl.Step) -> None:
        self._simple(step, {"unpause": None}, "instance.unpause.end", "ACTIVE")

    def act_suspend(self, step: wl.Step) -> None:
        self._simple(step, {"suspend": None}, "instance.suspend.end", "SUSPENDED")

    def act_resume(self, step: wl.Step) -> None:
        self._simple(step, {"resume": None}, "instance.resume.end", "ACTIVE")

    def act_reboot(self, step: wl.Step) -> None:
        kind = "HARD" if step.args.get("hard") else "SOFT"
        self._simple(step, {"reboot": {"type": kind}}, "instance.reboot.end", "ACTIVE")

    def act_rescue(self, step: wl.Step) -> None:
        self._simple(step, {"rescue": {}}, "instance.rescue.end", "RESCUE")

    def act_unrescue(self, step: wl.Step) -> None:
        self._simple(step, {"unrescue": None}, "instance.unrescue.end", "ACTIVE")

    def act_lock(self, step: wl.Step) -> None:
        body = {"lock": {"locked_reason": step.args["reason"]} if step.args.get("reason") else None}
        self._simple(step, body, "instance.lock", self._server(step.server or "")["status"])

    def act_unlock(self, step: wl.Step) -> None:
        self._simple(step, {"unlock": None}, "instance.unlock", self._server(step.server or "")["status"])

    def act_rebuild(self, step: wl.Step) -> None:
        body = {"rebuild": {"imageRef": IMAGE_IDS[step.args["image"]]}}
        self._simple(step, body, "instance.rebuild.end", "ACTIVE")

    def act_soft_delete(self, step: wl.Step) -> None:
        self.flags(reclaim_instance_interval=3600)  # a delete is then a soft delete
        start = len(self.capture)
        self.api.delete_server(self.servers[step.server or ""])
        self._wait_events(start, "instance.soft_delete.end")
        self._wait_server(step.server or "", status="SOFT_DELETED")
        self.flags(reclaim_instance_interval=0)

    def act_restore(self, step: wl.Step) -> None:
        self._simple(step, {"restore": None}, "instance.restore.end", "ACTIVE")

    def act_delete(self, step: wl.Step) -> None:
        name = step.server or ""
        start = len(self.capture)
        self.api.delete_server(self.servers[name])
        self._wait_events(start, "instance.delete.end")

        def gone() -> bool:
            try:
                self.api.get_server(self.servers[name])
            except api_client.OpenStackApiNotFoundException:
                return True
            return False

        self._until(f"{name} to be deleted", gone)

    def act_host_down(self, step: wl.Step) -> None:
        host = step.host or ""
        self.computes[host].stop()
        self.admin_api.put_service(self._service_id(host), {"forced_down": True})
        self._until(f"{host} to be down", lambda: self.admin_api.get_services(
            host=host, binary="nova-compute")[0]["state"] == "down")

    def act_host_up(self, step: wl.Step) -> None:
        host = step.host or ""
        self.computes[host].start()
        self.admin_api.put_service(self._service_id(host), {"forced_down": False})
        self._until(f"{host} to be up", lambda: self.admin_api.get_services(
            host=host, binary="nova-compute")[0]["state"] == "up")

    def act_evacuate(self, step: wl.Step) -> None:
        name = step.server or ""
        body: dict[str, Any] = {"evacuate": {"host": step.host} if step.host else {}}
        start = self._action(step, body, self.admin_api)
        self._wait_events(start, "instance.rebuild.end")
        server = self._until(f"{name} to be evacuated", lambda: (
            (s := self._server(name))["OS-EXT-STS:task_state"] is None
            and (step.host is None or s["OS-EXT-SRV-ATTR:host"] == step.host) and s))
        self._wait_for_migration_status(server, ["done"])

    def act_disable_service(self, step: wl.Step) -> None:
        host = step.host or ""
        self.admin_api.put_service(self._service_id(host), {"status": "disabled",
                                                            "disabled_reason": step.args.get("reason")})

    def act_enable_service(self, step: wl.Step) -> None:
        self.admin_api.put_service(self._service_id(step.host or ""), {"status": "enabled"})

    # --- the API views ----------------------------------------------------------------------------------

    def views(self) -> dict[str, Any]:
        """Nova's API as an admin sees it: hypervisors at 2.87, servers (and soft-deleted ones), flavors."""
        api = self.admin_api
        with nova_utils.temporary_mutation(api, microversion=HYPERVISORS_MICROVERSION):
            hypervisors = api.api_get("/os-hypervisors/detail").body["hypervisors"]
        servers = api.api_get("/servers/detail?all_tenants=1").body["servers"]
        # Nova 34 lists soft-deleted servers with deleted=true (which adds deleted ones, hence the status) or
        # soft_deleted=<anything> (which adds them to the others); status=SOFT_DELETED alone lists none.
        soft = api.api_get("/servers/detail?all_tenants=1&deleted=true&status=SOFT_DELETED").body["servers"]
        flavors = api.api_get("/flavors/detail?is_public=None").body["flavors"]
        return {"at": len(self.capture), "microversions": {"hypervisors": HYPERVISORS_MICROVERSION,
                                                            "servers": "latest", "flavors": "latest"},
                "hypervisors": hypervisors, "servers": servers, "soft_deleted_servers": soft, "flavors": flavors}

    # --- Nova's API over HTTP ---------------------------------------------------------------------------

    def _serve_api(self) -> str:
        """Serve Nova's API (the fixture's WSGI app) on a free loopback port; the compute endpoint URL."""
        import eventlet
        import eventlet.wsgi

        app = self.api_fixture.app()
        roles = {"admin": "reader,member,admin"}

        def token_auth(environ: dict[str, Any], start_response: Any) -> Any:
            # The fixture's stubbed Keystone context reads the user, project and roles from these headers.
            token = environ.get("HTTP_X_AUTH_TOKEN", "")
            user, _, project = token.partition(":")
            if user and project:
                environ["HTTP_X_AUTH_USER"] = user
                environ["HTTP_X_AUTH_PROJECT_ID"] = project
                environ["HTTP_X_ROLES"] = roles.get(user, "reader,member")
            elif environ.get("PATH_INFO", "/").strip("/") not in ("", "v2.1", "v2"):
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"error": {"code": 401, "message": "The request you have made requires authentication."}}']
            return app(environ, start_response)

        sock = eventlet.listen(("127.0.0.1", 0))
        server = eventlet.spawn(eventlet.wsgi.server, sock, token_auth, log=open(os.devnull, "w"),  # noqa: SIM115
                                log_output=False)

        def stop() -> None:
            server.kill()
            sock.close()

        self.addCleanup(stop)
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v2.1"

    def _hand_over(self, view: str, url: str) -> None:
        """Tell the client Nova's API is ready at this view, and wait until it has read what it needs."""
        assert self.serve_dir is not None
        done = self.serve_dir / f"{view}.done"
        ready = self.serve_dir / f"{view}.url"
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(url + "\n")
        tmp.rename(ready)
        self._until(f"{done} (the client reading Nova's API at the {view!r} view)", done.exists,
                    timeout=float(os.environ.get("NOVAWATCH_NOVA_HANDOVER_TIMEOUT", "600")))

    # --- the run ----------------------------------------------------------------------------------------

    def _write_log(self) -> None:
        if self.log_path is not None:
            self.log_path.write_text(self.stdlog.logger.output)

    def test_workload(self) -> None:
        wl.validate(wl.SETUP + wl.WORKLOAD)
        self.addCleanup(self._write_log)
        steps: list[dict[str, Any]] = []
        started = time.monotonic()

        def run(step: wl.Step, phase: str) -> None:
            first = len(self.capture)
            t0 = time.monotonic()
            try:
                self.do(step)
                self._settle()
            except Exception as exc:
                raise StepFailed(f"step {step.name!r} failed: {exc}") from exc
            steps.append({**step.as_dict(), "phase": phase, "first": first, "end": len(self.capture),
                          "seconds": round(time.monotonic() - t0, 2)})
            print(f"  {phase:<8} {step.name:<40} {len(self.capture) - first:>4} notifications", flush=True)

        url = self._serve_api() if self.serve_dir is not None else None
        self.create_flavors()
        self._settle()
        for step in wl.SETUP:
            run(step, "setup")
        before = self.views()
        if url is not None:
            self._hand_over("before", url)
        for step in wl.WORKLOAD:
            run(step, "workload")
        after = self.views()
        if url is not None:
            self._hand_over("after", url)
        capture = {
            "format": FORMAT,
            "nova_version": _nova_version(),
            "settings": {"notifications": NOTIFICATION_SETTINGS, "compute_driver": "fake.FakeDriver",
                         "hosts": list(wl.HOSTS)},
            "ids": {"servers": self.servers, "flavors": self.flavor_ids, "images": IMAGE_IDS,
                    "volumes": VOLUME_IDS},
            "steps": steps,
            "views": {"before": before, "after": after},
            "notifications": self.capture.records,
            "seconds": round(time.monotonic() - started, 1),
        }
        self.out_path.write_text(json.dumps(capture, indent=1, sort_keys=False) + "\n")


def _nova_version() -> str:
    from importlib.metadata import version

    return version("nova")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the capture (JSON)")
    parser.add_argument("--log", type=Path, help="where to write Nova's log of the run")
    parser.add_argument("--serve", type=Path, metavar="DIR",
                        help="serve Nova's API on loopback and hand it over at each view through files in DIR")
    args = parser.parse_args(argv)
    NovaCloud.capture = Capture()
    NovaCloud.out_path = args.out
    NovaCloud.log_path = args.log
    NovaCloud.serve_dir = args.serve
    case = NovaCloud("test_workload")
    import unittest

    result = unittest.TestResult()
    case.run(result)
    problems = result.errors + result.failures
    for _, text in problems:
        print(text, file=sys.stderr)
    if problems or not args.out.exists():
        print(f"the Nova workload failed ({len(problems)} error(s)); see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
