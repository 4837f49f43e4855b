"""The demo's application bundle: a tiny ROS-style package per architecture, as tar.gz."""

from __future__ import annotations

import io
import tarfile

PACKAGE = "hello_fleet"
LAUNCH_FILE = "hello_fleet.launch"
PRE_LAUNCH = "scripts/pre_launch.sh"
POST_LAUNCH = "scripts/post_launch.sh"


def build_bundle(architecture: str, version: str = "1.0.0") -> bytes:
    """A tiny ROS-style package as tar.gz: package.xml, a launch file, pre/post-launch scripts."""
    files = {
        f"{PACKAGE}/package.xml": (
            f'<?xml version="1.0"?>\n<package format="3">\n  <name>{PACKAGE}</name>\n'
            f"  <version>{version}</version>\n  <description>Fleetwave demo node ({architecture})"
            '</description>\n  <maintainer email="demo@example.com">demo</maintainer>\n'
            "  <license>Apache-2.0</license>\n  <exec_depend>rclpy</exec_depend>\n</package>\n"
        ),
        f"{PACKAGE}/launch/{LAUNCH_FILE}": (
            '<launch>\n  <node pkg="hello_fleet" exec="talker" name="talker" output="screen">\n'
            f'    <param name="architecture" value="{architecture}"/>\n  </node>\n</launch>\n'
        ),
        f"{PACKAGE}/{PRE_LAUNCH}": "#!/bin/sh\nset -e\necho 'pre-launch: checking sensors'\n",
        f"{PACKAGE}/{POST_LAUNCH}": "#!/bin/sh\nset -e\necho 'post-launch: talker is up'\n",
        f"{PACKAGE}/lib/{PACKAGE}/talker": f"#!/usr/bin/env python3\nprint('hello from {architecture}')\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith((".sh", "talker")) else 0o644
            info.mtime = 0  # reproducible bytes: the same bundle has the same ETag
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
