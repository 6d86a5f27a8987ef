"""torch's own catalogue as the facade's yardstick.

Runs torch's OpInfo catalogue (`torch.testing._internal.common_methods_invocations.op_db`) and ModuleInfo
catalogue (`torch.testing._internal.common_modules.module_db`) through the facade (`shim.torch`, imported beside
real `torch` in the same process, never activated as `torch`) and compares every result with real torch.

- `harness.run_ops()` / `harness.run_modules()` -> `{entry name: EntryResult}` (see harness.py for the phases
  and the statuses: pass / unsupported / wrong / foreign / skip).
- `report.write_api_md()` writes `shim/API.md` (where each catalogue name lives in the facade, native /
  emulated / unsupported, parity status and the totals the tests ratchet on).
- `python -m shim.coverage` runs both catalogues, prints the table and rewrites `shim/API.md`.

Importing torch's catalogue needs `expecttest` (the project's `test` extra pins it).
"""
from __future__ import annotations

__all__ = ["harness", "report"]
