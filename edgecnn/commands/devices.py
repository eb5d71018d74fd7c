"""`edgecnn devices [NAME]`: list the device profiles in devices/, or show one (validated against the schema)."""

from __future__ import annotations

import argparse
import json

COLUMNS = [("name", "name", "{}"), ("arch", "arch", "{}"), ("threads", "threads", "{}"),
           ("runtimes", "runtimes", "{}"), ("camera", "camera", "{}"), ("description", "description", "{}")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME|PATH", help="show this profile in full, with install notes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from edgecnn.devices import DEVICES_DIR, list_profiles, load_profile
    from edgecnn.report import format_table

    if args.name:
        profile = load_profile(args.name)
        if args.json:
            print(json.dumps(profile.model_dump(), indent=2))
            return 0
        camera = profile.camera
        print(f"{profile.name}: {profile.description or profile.arch}")
        print(f"arch {profile.arch}, threads {profile.threads}, runtimes {', '.join(profile.runtime_preference)}")
        print("deploy candidates: " + ", ".join(f"{f} {p}" for f, p in profile.deploy_targets()))
        print(f"camera {camera.source}: {camera.width or '-'}x{camera.height or '-'} at {camera.fps or '-'} fps, "
              f"{camera.fourcc or 'default format'}")
        print(f"\ninstall:\n{profile.install.rstrip()}")
        if profile.notes:
            print(f"\nnotes: {profile.notes}")
        return 0
    profiles = list_profiles()
    if args.json:
        print(json.dumps([p.model_dump() for p in profiles], indent=2))
        return 0
    rows = [{"name": p.name, "arch": p.arch, "threads": p.threads, "runtimes": ",".join(p.runtime_preference),
             "camera": f"{p.camera.source} {p.camera.width or '-'}x{p.camera.height or '-'}@{p.camera.fps or '-'}",
             "description": p.description} for p in profiles]
    print(format_table(rows, COLUMNS))
    print(f"\n{len(profiles)} profiles in {DEVICES_DIR}; `edgecnn devices NAME` shows install steps; "
          "`edgecnn live --device NAME` uses one")
    return 0
