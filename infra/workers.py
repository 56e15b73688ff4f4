"""Deploy the market worker as N shard services from one template, and retire a generation.

    python infra/workers.py render  --project P --shards N --generation G --image I [--out DIR]
    python infra/workers.py deploy  --project P --shards N --generation G [--region R]
    python infra/workers.py retire  --project P --generation G [--region R] [--yes]
    python infra/workers.py list    --project P [--region R]

Each shard is its own Cloud Run service, `cogmora-worker-<G>-<i>` (i = 0 .. N-1),
rendered from infra/worker-service.yaml with SHARD_COUNT=N and SHARD_INDEX=i and
labelled with its generation, so a generation is deployed and retired as a whole.
Re-sharding (docs/operations.md) deploys a new generation next to the running one
(overlap: both arm every level, a mark is a transaction that only the first
commits), waits until `workerShards` reports every new shard fresh, then retires
the old generation. `deploy` builds the image once (Cloud Build) and replaces
every shard's service with `gcloud run services replace`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "worker-service.yaml"
SERVICE_PREFIX = "cogmora-worker"


def service_name(generation: str, index: int) -> str:
    """Return a shard's Cloud Run service name (lowercase letters, digits, hyphens)."""
    return f"{SERVICE_PREFIX}-{generation}-{index}"


def check(generation: str, shards: int) -> None:
    """Refuse a generation Cloud Run cannot name, or a shard count below 1."""
    if shards < 1:
        raise ValueError("a deployment has at least one shard")
    if not generation or not all(c.isdigit() or "a" <= c <= "z" for c in generation):
        raise ValueError(f"generation {generation!r}: lowercase letters and digits only")
    if len(service_name(generation, shards - 1)) > 49:
        raise ValueError("service names are at most 49 characters")


def render(project: str, image: str, shards: int, generation: str,
           template: str | None = None) -> dict[str, str]:
    """Return each shard's service YAML by service name."""
    check(generation, shards)
    text = template if template is not None else TEMPLATE.read_text()
    return {service_name(generation, i): (
        text.replace("SERVICE_NAME", service_name(generation, i))
        .replace("GENERATION", generation)
        .replace("SHARD_COUNT_VALUE", str(shards))
        .replace("SHARD_INDEX_VALUE", str(i))
        .replace("PROJECT_ID", project)
        .replace("IMAGE", image)) for i in range(shards)}


def _run(*args: str) -> str:
    print("+", " ".join(args), file=sys.stderr)
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def deploy(project: str, region: str, shards: int, generation: str, out: Path) -> list[str]:
    """Build the image, then deploy (or replace) every shard's service; return their names."""
    commit = _run("git", "rev-parse", "--short", "HEAD").strip()
    image = f"gcr.io/{project}/cogmora-worker:{commit}"
    _run("gcloud", "builds", "submit", "--project", project, "--tag", image, ".")
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for name, text in render(project, image, shards, generation).items():
        path = out / f"{name}.yaml"
        path.write_text(text)
        _run("gcloud", "run", "services", "replace", str(path), "--project", project,
             "--region", region)
        names.append(name)
    return names


def generation_services(project: str, region: str, generation: str | None) -> list[str]:
    """Return the worker services deployed (of one generation, or of any)."""
    label = "cogmora-generation" + (f"={generation}" if generation else "")
    found = json.loads(_run("gcloud", "run", "services", "list", "--project", project,
                            "--region", region, "--filter", f"metadata.labels.{label}",
                            "--format", "json"))
    return sorted(str(s["metadata"]["name"]) for s in found)


def retire(project: str, region: str, generation: str) -> list[str]:
    """Delete every service of `generation`; return their names."""
    names = generation_services(project, region, generation)
    for name in names:
        _run("gcloud", "run", "services", "delete", name, "--project", project,
             "--region", region, "--quiet")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("render", "deploy", "retire", "list"))
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--generation", default="")
    parser.add_argument("--image", default="IMAGE")
    parser.add_argument("--out", type=Path, default=Path("/tmp/cogmora-workers"))
    parser.add_argument("--yes", action="store_true", help="retire without asking")
    args = parser.parse_args(argv)
    if args.command == "render":
        for name, text in render(args.project, args.image, args.shards,
                                 args.generation).items():
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.yaml").write_text(text)
            print(args.out / f"{name}.yaml")
    elif args.command == "deploy":
        check(args.generation, args.shards)
        for name in deploy(args.project, args.region, args.shards, args.generation, args.out):
            print(f"deployed {name}")
    elif args.command == "retire":
        if not args.generation:
            parser.error("retire needs --generation")
        if not args.yes:
            answer = input(f"delete every service of generation {args.generation}? [y/N] ")
            if answer.strip().lower() != "y":
                return 1
        for name in retire(args.project, args.region, args.generation):
            print(f"retired {name}")
    else:
        print("\n".join(generation_services(args.project, args.region, None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
