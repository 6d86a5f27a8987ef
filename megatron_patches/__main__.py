"""`python -m megatron_patches --list [--state FILE ...]`: every registered patch, whether it applied, whether
it was hit.

Without --state, the state files named by $MEGATRON_PATCHES_STATE (this rank's and the `.rank<N>` files of the
others) are read when they exist; otherwise only the registry and its version match are shown (this process
does not run megatron-core, so nothing is applied or hit in it). With several state files (one per rank), a
patch counts as applied/hit when it was on any rank; hits are summed. Exit status 0, or 2 for an unreadable
state file.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from . import STATE_ENV, registered
from .registry import PatchError, megatron_core_version


def _state_files(explicit):
    if explicit:
        return explicit
    value = os.environ.get(STATE_ENV)
    if not value:
        return []
    pattern = value.replace("{rank}", "*") if "{rank}" in value else None
    files = glob.glob(pattern) if pattern else [f for f in [value] + glob.glob(value + ".rank*")
                                                  if os.path.isfile(f)]
    return sorted(files)


def main(argv=None) -> int:
    """Command-line entry (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m megatron_patches", description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="list every patch with applied/hit state")
    ap.add_argument("--state", nargs="*", default=None,
                    help=f"patch state JSON files written by a run (default: ${STATE_ENV})")
    args = ap.parse_args(argv)
    if not args.list:
        ap.print_help()
        return 0
    states = []
    for path in _state_files(args.state):
        try:
            with open(path) as f:
                states.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"error: cannot read patch state file {path}: {e}", file=sys.stderr)
            return 2
    try:
        version = megatron_core_version()
    except PatchError:
        version = "not installed"
    print(f"megatron-core {version}; {len(registered())} patch(es); "
          f"state from {len(states)} process(es)" + ("" if states else " (none: applied/hit unknown here)"))
    print(f"{'name':32} {'applied':8} {'hit':>6}  {'versions':14} {'stacks':6} target")
    for p in registered():
        if states:
            recs = [s["patches"].get(p.name, {}) for s in states]
            applied = "yes" if any(r.get("applied") for r in recs) else "no"
            hits = str(sum(int(r.get("hits", 0)) for r in recs))
        else:
            applied, hits = "-", "-"
        print(f"{p.name:32} {applied:8} {hits:>6}  {p.versions:14} {str(p.stacks):6} {p.target}")
        print(f"    reason: {p.reason}")
    for s in states:
        unknown = sorted(set(s.get("patches", {})) - {p.name for p in registered()})
        if unknown:
            print(f"note: rank {s.get('rank')} recorded patches not in this registry: {', '.join(unknown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
