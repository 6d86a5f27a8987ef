"""The data tables of the communication core: backend names and native-versus-emulated collectives.

Two tables, one place (see ``shim/README.md`` and ``../shared/design.md``: "mappings are data"):

* :data:`BACKEND_ALIASES` maps the backend string a torch program passes to
  ``init_process_group`` (``"nccl"``, ``"gloo"``, ``"hccl"``, ``"mccl"``, ``None``) to the collective library
  MindSpore really uses on this platform; :func:`resolve_backend` applies it.
* :data:`NATIVE` lists, per MindSpore backend, which collectives run on a real MindSpore kernel and for which
  dtypes / groups. Everything not listed is *emulated* from the primitives that are (see
  ``shim/_comm/ops.py``): on CPU (``mccl``) that is float32 ``AllReduce`` on any group plus ``AllGather`` /
  ``Broadcast`` on the world group, as measured in ``../shared/notes/mindspore-cpu.md`` and re-checked for this
  module (``AllGather``/``Broadcast`` reject any group but ``mccl_world_group`` on CPU). :func:`is_native` is
  the only reader; :func:`describe` renders the table for reports and the benchmark.

The ``hccl`` rows describe Ascend, where HCCL has real kernels; they are not exercised on these CPU machines.
"""
from __future__ import annotations

import os
from typing import Optional

# torch backend name -> what it means here. The value ``"platform"`` means "the platform's own library":
# MindSpore picks it at ``mindspore.communication.init()`` time (mccl on CPU, hccl on Ascend, nccl on GPU).
BACKEND_ALIASES: dict[Optional[str], str] = {
    None: "platform",
    "": "platform",
    "nccl": "platform",
    "gloo": "platform",
    "hccl": "platform",
    "mccl": "platform",
    "cpu:gloo,cuda:nccl": "platform",
    "undefined": "platform",
}

_F16_F32 = frozenset({"float32", "float16"})
_HCCL_DTYPES = frozenset({"float32", "float16", "bfloat16", "int32", "int8"})

# Per MindSpore backend: collective -> {"dtypes": dtype names (numpy spelling, plus "bfloat16"),
#                                       "ops": reduce ops (for reductions), "groups": "any" | "world"}.
# A collective absent here is emulated (see ops.py) on that backend.
NATIVE: dict[str, dict[str, dict]] = {
    "mccl": {
        # Measured: SUM only ("AllReduce only support reduce sum on CPU"), float32/float16, any group.
        "all_reduce": {"dtypes": _F16_F32, "ops": frozenset({"sum"}), "groups": "any"},
        # Measured: float32/float16/float64/int32, world group only.
        "all_gather": {"dtypes": frozenset({"float32", "float16", "float64", "int32"}), "groups": "world"},
        # Measured: float32 and int32, world group only.
        "broadcast": {"dtypes": frozenset({"float32", "int32"}), "groups": "world"},
    },
    "hccl": {
        "all_reduce": {"dtypes": _HCCL_DTYPES, "ops": frozenset({"sum", "max", "min", "prod"}), "groups": "any"},
        "all_gather": {"dtypes": _HCCL_DTYPES, "groups": "any"},
        "broadcast": {"dtypes": _HCCL_DTYPES, "groups": "any"},
    },
}

# Per MindSpore backend: the largest payload (bytes per rank) that collectives send over the direct host transport
# (``shim/_comm/hostnet.py``: TCP between the members' processes) instead of the backend's kernels. A backend not
# listed never uses it. mccl (MindSpore CPU): measured 2026-12-06 at 2 ranks on 2 shared cores (BENCHMARKS.md,
# "Collectives over the host transport"): all-reduce store meeting + mccl kernel 6.2 / 7.4 / 475 ms for 4 KB /
# 64 KB / 16 MB, host transport 4.2 / 3.5 / 146 ms in the same run (gloo 1.7 / 0.23 / 42 ms; load 12-17): faster
# at every size measured (1 KB-16 MB), so every mccl collective takes it. SHIM_COMM_HOST_BYTES (see
# host_transport_bytes) lowers the limit, e.g. to 0 to run MindSpore's kernels.
HOST_TRANSPORT: dict[str, int] = {
    "mccl": 1 << 62,
}

# The torch collectives the facade offers, and how each is built when it is not native. One row each, so a
# report (and a test that walks the table) can say what is emulated where.
EMULATION: dict[str, str] = {
    "all_reduce": "all-gather of the bytes (int32 words on the world group, 16-bit words in a float32 "
                  "all-reduce on sub-groups), then the reduction computed locally in rank order",
    "all_gather": "same byte all-gather",
    "broadcast": "float32 all-reduce in which only the root contributes (16-bit words carried exactly)",
    "reduce": "all_reduce, kept on the destination rank only",
    "reduce_scatter": "all_reduce of the whole input, each rank keeping its chunk",
    "gather": "all_gather, kept on the destination rank only",
    "scatter": "broadcast of the root's concatenated chunks, each rank keeping its own",
    "all_to_all": "byte all-gather of every rank's send buffers, each rank picking its chunks",
    "barrier": "a one-element float32 all-reduce in the group, synchronised",
    "send/recv": "a two-member group per rank pair; a float32 all-reduce in which only the sender "
                 "contributes; queued and executed in a global (pair, direction, sequence) order",
    "objects": "pickle, all-gather of the lengths, then of the padded bytes",
}


def resolve_backend(name: Optional[str]) -> str:
    """Map a torch backend name to what the shim uses.

    Returns ``"platform"`` for every accepted name: the real library is the one MindSpore selects
    (``mccl`` on CPU, ``hccl`` on Ascend); ask ``shim._comm.world.backend()`` after init for which.
    Raises ``ValueError`` naming the backend and the accepted ones when ``name`` is unknown (e.g. ``"mpi"``,
    ``"ucc"``).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in BACKEND_ALIASES:
        accepted = sorted(k for k in BACKEND_ALIASES if k)
        raise ValueError(f"init_process_group: backend {name!r} is not supported by the shim; "
                         f"accepted: {accepted} or None (all map to MindSpore's platform library)")
    return BACKEND_ALIASES[key]


def is_native(backend: str, collective: str, dtype: str, *, op: str = "sum", world: bool = True) -> bool:
    """True when ``collective`` on ``dtype`` (numpy name or ``"bfloat16"``) with reduce ``op`` in a group
    (``world`` says whether it is the world group) runs on a real MindSpore kernel on ``backend``."""
    row = NATIVE.get(backend, {}).get(collective)
    if row is None or dtype not in row["dtypes"]:
        return False
    if "ops" in row and op not in row["ops"]:
        return False
    return row["groups"] == "any" or world


HOST_TRANSPORT_ENV = "SHIM_COMM_HOST_BYTES"


def host_transport_bytes(backend: str) -> int:
    """The largest payload in bytes that collectives on ``backend`` send over the direct host transport
    (``HOST_TRANSPORT``; 0 where it is not used). The environment variable ``SHIM_COMM_HOST_BYTES`` (an integer,
    ``0`` = never) replaces the table's value for every backend, e.g. to run the MindSpore kernels on CPU;
    ``ValueError`` naming it when it is not an integer >= 0."""
    value = os.environ.get(HOST_TRANSPORT_ENV)
    if value is None or value.strip() == "":
        return HOST_TRANSPORT.get(backend, 0)
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(f"{HOST_TRANSPORT_ENV}={value!r}: expected an integer number of bytes >= 0 (0 turns the "
                         f"host transport off)")
    return limit


def describe(backend: str) -> str:
    """A plain-text rendering of the native/emulated table for ``backend`` (one line per collective)."""
    lines = [f"collectives on backend {backend!r}:"]
    native = NATIVE.get(backend, {})
    for name, how in EMULATION.items():
        row = native.get(name)
        if row:
            scope = "any group" if row["groups"] == "any" else "world group only"
            ops = f", ops {sorted(row['ops'])}" if "ops" in row else ""
            lines.append(f"  {name:15s} native for {sorted(row['dtypes'])}{ops}, {scope}; otherwise emulated: {how}")
        else:
            lines.append(f"  {name:15s} emulated: {how}")
    limit = host_transport_bytes(backend)
    if limit:
        size = "any size" if limit >= 1 << 60 else f"up to {limit} bytes per rank"
        lines.append(f"  under the launcher, every collective of {size} goes over the direct host transport "
                     f"instead (TCP between the processes, shim/_comm/hostnet.py), reduced like the emulation")
    return "\n".join(lines)
