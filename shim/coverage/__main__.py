"""`python -m shim.coverage [--no-write] [--only NAME,...]`: run torch's op_db and module_db through the facade,
print the table and rewrite shim/API.md (unless --no-write or --only)."""
from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m shim.coverage", description=__doc__)
    p.add_argument("--no-write", action="store_true", help="print only; leave shim/API.md alone")
    p.add_argument("--only", default="", help="comma-separated entry names (implies --no-write)")
    args = p.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only
    from . import harness, report  # after GLOG_v: importing the harness imports MindSpore, which reads it
    names = set(args.only.split(",")) if args.only else None
    t0 = time.perf_counter()
    ops = harness.run_ops(names)
    modules = harness.run_modules(names)
    took = time.perf_counter() - t0
    report.print_table(ops, modules)
    print(f"harness: {len(ops)} op entries, {len(modules)} module entries in {took:.1f} s")
    if not args.no_write and names is None:
        report.API_MD.write_text(report.render(ops, modules))
        print(f"wrote {report.API_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
