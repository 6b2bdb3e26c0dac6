"""Hook points: pre/post order, error isolation, fatal errors, and loading through real entry points."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from novawatch import hooks


@pytest.fixture(autouse=True)
def clean_hooks() -> Any:
    hooks.unregister_all()
    yield
    hooks.unregister_all()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def pre(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("pre", (args, kwargs)))

    def post(self, rv: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("post", (rv, args, kwargs)))


def test_pre_and_post_see_arguments_and_result() -> None:
    seen: list[str] = []

    @hooks.add_hook("point_a")
    def hooked(x: int, y: int = 0) -> int:
        seen.append("body")
        return x + y

    rec = Recorder()
    hooks.register("point_a", rec)
    assert hooked(2, y=3) == 5
    assert rec.calls == [("pre", ((2,), {"y": 3})), ("post", (5, (2,), {"y": 3}))]
    assert seen == ["body"]


def test_hooks_only_run_for_their_own_point() -> None:
    @hooks.add_hook("point_a")
    def a() -> str:
        return "a"

    @hooks.add_hook("point_b")
    def b() -> str:
        return "b"

    rec = Recorder()
    hooks.register("point_b", rec)
    a()
    assert rec.calls == []
    b()
    assert [c[0] for c in rec.calls] == ["pre", "post"]


def test_failing_hook_is_logged_with_its_name_and_call_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def pre(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("boom in pre")

        def post(self, rv: Any, *args: Any, **kwargs: Any) -> None:
            raise KeyError("boom in post")

    @hooks.add_hook("point_a")
    def hooked() -> str:
        return "still ran"

    after = Recorder()
    hooks.register("point_a", Broken(), name="broken-hook")
    hooks.register("point_a", after)
    with caplog.at_level(logging.ERROR, logger="novawatch.hooks"):
        assert hooked() == "still ran"
    messages = [r.getMessage() for r in caplog.records]
    assert any("broken-hook" in m and "point_a" in m for m in messages), messages
    assert len([m for m in messages if "broken-hook" in m]) == 2
    # The hook after the broken one still ran, both phases.
    assert [c[0] for c in after.calls] == ["pre", "post"]


def test_fatal_hook_error_stops_the_call() -> None:
    ran: list[bool] = []

    class Veto:
        def pre(self, *args: Any, **kwargs: Any) -> None:
            raise hooks.FatalHookError("not on my watch")

    @hooks.add_hook("point_a")
    def hooked() -> None:
        ran.append(True)

    hooks.register("point_a", Veto())
    with pytest.raises(hooks.FatalHookError, match="not on my watch"):
        hooked()
    assert ran == []


def test_hook_with_only_post_is_fine() -> None:
    got: list[Any] = []

    class PostOnly:
        def post(self, rv: Any, *args: Any, **kwargs: Any) -> None:
            got.append(rv)

    @hooks.add_hook("point_a")
    def hooked() -> int:
        return 7

    hooks.register("point_a", PostOnly())
    hooked()
    assert got == [7]


def _install_distribution(tmp_path: Path, body: str, entry: str) -> Path:
    """Build and install a tiny real distribution declaring a novawatch.hooks entry point."""
    src = tmp_path / "src"
    (src / "demohook").mkdir(parents=True)
    (src / "demohook" / "__init__.py").write_text(textwrap.dedent(body))
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "demohook"
        version = "1.0"

        [project.entry-points."novawatch.hooks"]
        {entry}
        """))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(src)],
        check=True, capture_output=True,
    )
    assert list(target.glob("demohook-1.0.dist-info"))
    return target


def test_hook_from_a_real_entry_point_receives_network_info(tmp_path: Path) -> None:
    out = tmp_path / "received.json"
    site = _install_distribution(
        tmp_path,
        f"""
        import json

        class DumpNetworkInfo:
            def post(self, rv, instance, network_info):
                with open({str(out)!r}, "w") as fh:
                    json.dump({{"instance": instance["uuid"], "network_info": network_info}}, fh)
        """,
        'update_instance_cache_with_nw_info = "demohook:DumpNetworkInfo"',
    )
    program = textwrap.dedent("""
        from novawatch import hooks

        @hooks.add_hook(hooks.NW_INFO_HOOK)
        def update_cache(instance, network_info):
            return len(network_info)

        vif = {"id": "p1", "address": "fa:16:3e:00:00:01", "network": {"label": "private"}}
        assert update_cache({"uuid": "i-1"}, [vif]) == 1
        """)
    env = {**os.environ, "PYTHONPATH": str(site)}
    subprocess.run([sys.executable, "-c", program], check=True, env=env)
    got = json.loads(out.read_text())
    assert got == {"instance": "i-1", "network_info": [
        {"id": "p1", "address": "fa:16:3e:00:00:01", "network": {"label": "private"}}]}


def test_entry_point_that_fails_to_load_is_skipped(tmp_path: Path) -> None:
    site = _install_distribution(tmp_path, "raise ImportError('missing dependency')\n",
                                 'update_instance_cache_with_nw_info = "demohook:Nope"')
    program = textwrap.dedent("""
        from novawatch import hooks

        @hooks.add_hook(hooks.NW_INFO_HOOK)
        def update_cache(instance, network_info):
            return "ok"

        print(update_cache({"uuid": "i-1"}, []))
        """)
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", program], check=True, env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "ok"
    assert "demohook:Nope" in done.stderr and "failed to load" in done.stderr
