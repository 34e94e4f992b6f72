"""scim2-tester (python-scim, Apache-2.0) against Lanyard's SCIM service: discovery, then
create, read, list, attributes, replace, patch (add, remove, replace) and delete of Users and
Groups, each checked against the schemas Lanyard publishes.

usage: LANYARD_SCIM_TOKEN=... python check.py BASE_URL      exit 0: every check passed
       python check.py --check-requirements                  exit 0: the pins are installed

The token comes from the environment, never the command line. A check the server answers as
not supported (SKIPPED: the root /.search, 501) passes; ERROR, CRITICAL and DEVIATION fail.
"""
import os
import sys
from importlib import metadata
from pathlib import Path


def check_requirements() -> int:
    missing = []
    for line in (Path(__file__).parent / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, version = line.split("==")
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "none"
        if have != version:
            missing.append(f"{name}=={version} (installed: {have})")
    if missing:
        print("missing or different: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


def main() -> int:
    if sys.argv[1:] == ["--check-requirements"]:
        return check_requirements()
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    url = sys.argv[1]
    token = os.environ["LANYARD_SCIM_TOKEN"]
    client = SyncSCIMClient(
        Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    )
    results = check_server(client)
    bad = {Status.ERROR, Status.CRITICAL, Status.DEVIATION}
    failed = 0
    for r in results:
        mark = "FAIL" if r.status in bad else "ok  "
        failed += r.status in bad
        reason = (r.reason or "").splitlines()
        print(f"{mark} {r.status.name:<9} {r.resource_type or '-':<6} {r.title}: {reason[0] if reason else ''}")
        if r.status in bad and len(reason) > 1:
            print("      " + "\n      ".join(reason))
    passed = sum(r.status == Status.SUCCESS for r in results)
    print(f"\n{len(results)} checks: {passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
