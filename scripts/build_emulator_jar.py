"""Build the wrapper jar that lets firebase-tools start the installed Firestore emulator.

The CLI starts its emulator as `java -jar <jar>`; the Google Cloud CLI's jar
has no Main-Class, so this writes a jar holding only a manifest that names
the main class and puts the installed jar on the class path.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
PACKAGE = "google-cloud-cli-firestore-emulator"


def find_emulator_jar() -> Path:
    """Return the installed emulator jar, asking dpkg where the package put it."""
    listing = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        if line.endswith("emulator.jar") and Path(line).is_file():
            return Path(line)
    raise SystemExit(
        f"the Firestore emulator is not installed: dpkg -L {PACKAGE} lists no emulator.jar"
    )


def write_wrapper(target: Path, emulator_jar: Path) -> None:
    """Write a jar at `target` whose manifest runs `emulator_jar`'s main class."""
    lines = [
        "Manifest-Version: 1.0",
        f"Main-Class: {MAIN_CLASS}",
        f"Class-Path: {emulator_jar.resolve().as_uri()}",
    ]
    manifest = "".join(_wrap(line) for line in lines) + "\r\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", manifest)


def _wrap(line: str, width: int = 72) -> str:
    """Fold a manifest line: at most 72 bytes, continuations start with a space."""
    parts = [line[:width]]
    rest = line[width:]
    while rest:
        parts.append(" " + rest[: width - 1])
        rest = rest[width - 1 :]
    return "".join(part + "\r\n" for part in parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    write_wrapper(args.target, find_emulator_jar())
    print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
