"""Quotas as novawatch runs them: Nova's ``[quota]`` options, -1 (unlimited) for what it does not enforce.

novawatch enforces Nova's defaults for metadata items (per server), key pairs (per user) and server
groups (per project); instances, cores and RAM are unlimited (as with Nova's ``[quota] instances = -1``
...), so that a simulated cloud can hold any number of servers. There are no per-project overrides.
"""

from __future__ import annotations

UNLIMITED = -1

METADATA_ITEMS = 128
KEY_PAIRS = 100
SERVER_GROUPS = 10
SERVER_GROUP_MEMBERS = 10

#: Every quota Nova's API shows, with the limit novawatch applies (Nova's defaults but for the unlimited).
LIMITS: dict[str, int] = {
    "instances": UNLIMITED, "cores": UNLIMITED, "ram": UNLIMITED,
    "metadata_items": METADATA_ITEMS, "key_pairs": KEY_PAIRS,
    "server_groups": SERVER_GROUPS, "server_group_members": SERVER_GROUP_MEMBERS,
    # Shown before microversions 2.36/2.57 only; nothing in novawatch uses them.
    "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
    "fixed_ips": UNLIMITED, "floating_ips": 10, "security_groups": 10, "security_group_rules": 20,
}
