"""``torch.distributed`` (c10d API) on MindSpore communication: process groups, collectives, point-to-point.

Mirrors torch's ``torch/distributed/distributed_c10d.py``: the same names, arguments and per-rank semantics.
Each public function maps onto the communication core (``shim/_comm``): facade tensors are handed to it as
MindSpore tensors of their true dtype (``to_ms``) and results are written back *into the caller's tensors*
with ``Tensor.copy_`` (so an ``all_reduce`` on a view of a larger buffer updates the buffer, as in torch).

Backends: ``nccl``/``gloo``/``hccl``/``mccl``/None all select MindSpore's platform library; ``get_backend``
answers the name the program asked for (as torch does: ``init_process_group("nccl")`` -> ``"nccl"``), and the
library really used (``mccl`` on CPU, ``hccl`` on Ascend) when it asked for none; :func:`platform_backend` always
answers the library really used. Which collectives run on a native kernel
and which are emulated is the table in ``shim/_comm/table.py`` (:func:`collective_table` prints it).

Asynchrony: ``async_op=True`` returns a :class:`Work`. Collectives are dispatched at call time (MindSpore runs
its kernels asynchronously; ``Work.wait()`` synchronises). Point-to-point transfers are queued and run, in a
deadlock-free global order, when waited on (``Work.wait()``, a blocking ``send``/``recv``, or
``batch_isend_irecv``) — see ``shim/_comm/p2p.py``.

Known differences from torch: ``recv(src=None)`` (any source), ``store=``, ``file://`` init, ``tag`` matching
and ``ReduceOp.PREMUL_SUM``/bitwise ops raise ``NotImplementedError``; collective ``timeout`` is only enforced
at start-up (joining).
"""
from __future__ import annotations

import contextlib
import datetime
import enum
import io
import pickle
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from shim._comm import ops as _ops
from shim._comm import p2p as _p2p
from shim._comm import table as _table
from shim._comm import world as _cw

from .._tensor import Tensor, to_ms, wrap
from .._aliasing import assign as _assign
from ..futures import Future

# ----------------------------------------------------------------------------------------------- constants
default_pg_timeout = datetime.timedelta(minutes=30)


class Backend(str):
    """Backend names as torch spells them; ``Backend("hccl") == "hccl"``. All map to the platform library."""

    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    HCCL = "hccl"
    MCCL = "mccl"
    MPI = "mpi"

    def __new__(cls, name: str):
        if not isinstance(name, str):
            raise ValueError(f"Backend name must be a string, got {name!r}")
        _table.resolve_backend(name)
        return str.__new__(cls, name.lower())


class ReduceOp(enum.Enum):
    """Reduction operators: SUM, AVG, MAX, MIN, PRODUCT (others raise ``NotImplementedError`` when used)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "prod"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"
    PREMUL_SUM = "premul_sum"
    UNUSED = "unused"


reduce_op = ReduceOp


def _op_name(op) -> str:
    if isinstance(op, ReduceOp):
        name = op.value
    elif isinstance(op, str):
        name = op.lower()
    else:
        raise TypeError(f"op must be a torch.distributed.ReduceOp, got {type(op).__name__}")
    if name not in _ops.REDUCE_OPS:
        raise NotImplementedError(f"torch.distributed ReduceOp.{str(name).upper()} is not implemented by the shim; "
                                  f"supported: SUM, AVG, MAX, MIN, PRODUCT")
    return name


class ProcessGroup:
    """A process group (torch's ``ProcessGroup``): ``rank()`` (this process's rank in it), ``size()``,
    ``name()``; wraps a communication-core group (``shim._comm.world.Group``)."""

    def __init__(self, core: _cw.Group, backend: Optional[str] = None) -> None:
        self._core = core
        self._backend_name = backend  # the name the program asked for (None: the platform library's)

    def rank(self) -> int:
        """This process's rank in the group (-1 if not a member)."""
        me = _cw.rank()
        return self._core.ranks.index(me) if me in self._core.ranks else -1

    def size(self) -> int:
        """Number of members."""
        return self._core.size

    def name(self) -> str:
        """The backend's group name (MindSpore's communicator name)."""
        return self._core.name

    @property
    def group_name(self) -> str:
        """Same as :meth:`name` (torch 2.x attribute)."""
        return self._core.name

    def _get_backend_name(self) -> str:
        """The backend name asked for at creation (``"nccl"``, ``"gloo"``, ...), else the platform library's."""
        return self._backend_name or _cw.backend()

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={list(self._core.ranks)}, name={self._core.name!r})"


class _NonMember:
    def __repr__(self) -> str:
        return "GroupMember.NON_GROUP_MEMBER"


class GroupMember:
    """``GroupMember.WORLD`` (the default group once initialised, else None) and
    ``GroupMember.NON_GROUP_MEMBER`` (what :func:`new_group` returns to non-members)."""

    WORLD: Optional[ProcessGroup] = None
    NON_GROUP_MEMBER = _NonMember()


class _GroupNamespace:
    """``torch.distributed.group.WORLD``: the default process group."""

    WORLD: Optional[ProcessGroup] = None


group = _GroupNamespace


class _World:
    """torch's ``_world`` registry (megatron-core reads ``_world.pg_map``): ProcessGroup -> (backend, None)."""

    def __init__(self) -> None:
        self.pg_map: dict = {}
        self.pg_names: dict = {}


_world = _World()
_pgs: dict[tuple, ProcessGroup] = {}


# ---------------------------------------------------------------------------------------------- Work handles
class Work:
    """Handle of an asynchronous operation (torch's ``Work``): ``wait()``, ``is_completed()``,
    ``is_success()``, ``exception()``, ``result()``, ``get_future()``."""

    def __init__(self, result: Optional[list] = None, sync: Optional[Callable[[], None]] = None) -> None:
        self._result = result or []
        self._sync = sync
        self._done = sync is None

    def wait(self, timeout: Optional[datetime.timedelta] = None) -> bool:
        """Block until the operation finished; returns True."""
        if not self._done:
            self._sync()
            self._done = True
        return True

    def is_completed(self) -> bool:
        """Whether :meth:`wait` would return immediately."""
        return self._done

    def is_success(self) -> bool:
        """True once completed without error."""
        return self._done

    def exception(self):
        """None (errors are raised by the call or by ``wait``)."""
        return None

    def result(self) -> list:
        """The output tensors."""
        return self._result

    def synchronize(self) -> None:
        """Same as :meth:`wait`."""
        self.wait()

    def get_future(self) -> Future:
        """A ``torch.futures.Future`` whose value is the list of output tensors (torch's ``Work.get_future``).

        The facade dispatches a collective when it is called, so the operation is waited for here and the Future
        returned is already completed (its ``then`` callbacks run at once, on this thread)."""
        self.wait()
        fut: Future = Future()
        fut.set_result(list(self._result))
        return fut


class _CoalescingManager:
    """What :func:`_coalescing_manager` yields: the works issued inside the block; ``wait()`` waits for all."""

    def __init__(self) -> None:
        self.works: list[Work] = []

    def append(self, work: Optional[Work]) -> None:
        """Record ``work`` (None, from a synchronous call, is skipped)."""
        if work is not None:
            self.works.append(work)

    def wait(self) -> None:
        """Wait for every recorded work."""
        for w in self.works:
            w.wait()


_coalescing: list[_CoalescingManager] = []


@contextlib.contextmanager
def _coalescing_manager(group=None, device=None, async_ops: bool = False):
    """torch's private ``_coalescing_manager`` (megatron-core's DDP groups its bucket collectives with it).
    The shim dispatches each collective at call time (no fusion); the yielded manager collects the works
    issued inside the block so ``cm.wait()`` waits for all of them, as in torch."""
    cm = _CoalescingManager()
    _coalescing.append(cm)
    try:
        yield cm
    finally:
        _coalescing.pop()


def _work(outputs: Sequence[Tensor], async_op: bool) -> Optional[Work]:
    outs = [t for t in outputs if isinstance(t, Tensor)]

    def sync() -> None:
        for t in outs:
            _ops.synchronize(to_ms(t))

    work = Work(list(outs), sync)
    if _coalescing:
        _coalescing[-1].append(work)
    return work if async_op else None


# --------------------------------------------------------------------------------------- group management
def is_available() -> bool:
    """True: torch.distributed is served by MindSpore communication."""
    return True


def is_initialized() -> bool:
    """Whether the default process group is initialised."""
    return _cw.is_initialized()


def is_gloo_available() -> bool:
    """True: ``gloo`` is accepted (it selects MindSpore's platform library)."""
    return True


def is_nccl_available() -> bool:
    """True: ``nccl`` is accepted (it selects MindSpore's platform library)."""
    return True


def is_mpi_available() -> bool:
    """False: there is no MPI backend."""
    return False


def is_torchelastic_launched() -> bool:
    """True when started by the launcher (``TORCHELASTIC_RUN_ID`` is set, as torchrun sets it)."""
    import os

    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def _seconds(timeout) -> float:
    if timeout is None:
        return default_pg_timeout.total_seconds()
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    raise TypeError(f"timeout must be a datetime.timedelta, got {type(timeout).__name__}")


def _pg_for(core: _cw.Group, backend: Optional[str] = None) -> ProcessGroup:
    pg = _pgs.get(core.ranks)
    if pg is None:
        pg = ProcessGroup(core, backend)
        _pgs[core.ranks] = pg
        _world.pg_map[pg] = (_cw.backend(), None)
        _world.pg_names[pg] = core.name
    return pg


def init_process_group(backend: Optional[str] = None, init_method: Optional[str] = None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Initialise the default process group (all ranks call it).

    ``backend``: ``nccl``/``gloo``/``hccl``/``mccl``/None -> MindSpore's platform library (``ValueError`` for
    others). ``init_method``: None, ``env://`` or ``tcp://HOST:PORT`` naming the launcher's master.
    ``world_size``/``rank`` default to the launcher's ``WORLD_SIZE``/``RANK`` and must agree with them
    (``ValueError`` naming both). ``timeout``: how long to wait for every rank to join (``RuntimeError`` naming
    the missing ranks). Without the launcher only ``world_size == 1`` works (a local one-process group).
    Maps to ``mindspore.communication.init()``.
    """
    if store is not None:
        raise NotImplementedError("torch.distributed.init_process_group(store=...) is not supported by the shim; "
                                  "use init_method='env://' under the launcher")
    _table.resolve_backend(backend)
    _cw.init(rank=rank, world_size=world_size, init_method=init_method, timeout=_seconds(timeout))
    pg = _pg_for(_cw.world(), None if backend is None else str(Backend(backend)))
    GroupMember.WORLD = pg
    _GroupNamespace.WORLD = pg


def destroy_process_group(group: Optional[ProcessGroup] = None) -> None:
    """Destroy the default group (``group`` None: everything) or forget one sub-group."""
    if group is None or group is GroupMember.WORLD:
        if _p2p.pending():
            _p2p.flush()
        _cw.destroy()
        _pgs.clear()
        _world.pg_map.clear()
        _world.pg_names.clear()
        GroupMember.WORLD = None
        _GroupNamespace.WORLD = None
        return
    if group is GroupMember.NON_GROUP_MEMBER:
        return
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"destroy_process_group: expected a ProcessGroup or None, got {type(group).__name__}")
    _world.pg_map.pop(group, None)
    _world.pg_names.pop(group, None)


def _resolve(g) -> Optional[_cw.Group]:
    """The core group for ``g``; None when this process is not a member."""
    if not _cw.is_initialized():
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    if g is None:
        return _cw.world()
    if g is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(g, ProcessGroup):
        raise TypeError(f"group must be a torch.distributed.ProcessGroup, got {type(g).__name__}")
    return g._core if _cw.rank() in g._core.ranks else None


def _not_member(what: str) -> None:
    warnings.warn(f"Running {what} on global rank {_cw.rank()} which does not belong to the given group.",
                  stacklevel=3)


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (default: global); -1 when not a member."""
    core = _resolve(group)
    return -1 if core is None else core.ranks.index(_cw.rank())


def get_world_size(group=None) -> int:
    """Size of ``group`` (default: the world); -1 when not a member."""
    core = _resolve(group)
    return -1 if core is None else core.size


def get_backend(group=None) -> str:
    """The backend name of ``group`` (default: the world) as the program asked for it, lower-cased, as torch
    answers: ``init_process_group("nccl")`` -> ``"nccl"``; a ``new_group`` without ``backend=`` inherits the
    world's. When none was asked for: the library really used (see :func:`platform_backend`).
    Raises ``RuntimeError`` before ``init_process_group``."""
    core = _resolve(group)
    pg = group if isinstance(group, ProcessGroup) else GroupMember.WORLD
    if core is None or pg is None:
        return _cw.backend()
    return pg._get_backend_name()


def platform_backend() -> str:
    """(shim) The library really used, whatever name was asked for: ``"mccl"`` (MindSpore CPU), ``"hccl"``
    (Ascend), ``"nccl"`` (GPU) or ``"local"`` (one-process group without a launcher)."""
    if not _cw.is_initialized():
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return _cw.backend()


def new_group(ranks: Optional[Sequence[int]] = None, timeout=None, backend=None, pg_options=None,
              use_local_synchronization: bool = False, group_desc: Optional[str] = None, device_id=None):
    """Create the group of global ``ranks``; every rank of the world calls it in the same order, as in torch.
    Members get a new :class:`ProcessGroup`, others ``GroupMember.NON_GROUP_MEMBER``. The MindSpore
    communicator is named ``shim_g_<ranks>`` (deterministic), created by the members on first use, and reused
    by every group of the same rank set (the world's own communicator for all ranks)."""
    if backend is not None:
        _table.resolve_backend(backend)
    core = _cw.new_group(ranks)
    if _cw.rank() not in core.ranks:
        return GroupMember.NON_GROUP_MEMBER
    # A new ProcessGroup object per call, as torch (destroying it must not touch the default group or an
    # earlier group of the same ranks); the MindSpore communicator behind it is shared by identical rank sets.
    world = GroupMember.WORLD
    pg = ProcessGroup(core, str(Backend(backend)) if backend is not None
                      else (world._backend_name if world is not None else None))
    _world.pg_map[pg] = (_cw.backend(), None)
    _world.pg_names[pg] = core.name
    return pg


def new_subgroups_by_enumeration(ranks_per_subgroup_list, timeout=None, backend=None, pg_options=None):
    """Create one group per rank list; returns (this rank's group or None, all groups)."""
    groups, mine = [], None
    for ranks in ranks_per_subgroup_list:
        g = new_group(ranks, timeout=timeout, backend=backend)
        groups.append(g)
        if _cw.rank() in ranks:
            mine = g
    return mine, groups


def get_process_group_ranks(group) -> list[int]:
    """The global ranks of ``group`` in group-rank order."""
    core = _cw.world() if group is None else group._core
    return list(core.ranks)


def get_global_rank(group, group_rank: int) -> int:
    """The global rank of ``group_rank`` in ``group`` (``ValueError`` when out of range)."""
    core = _cw.world() if group is None else group._core
    return core.global_rank(group_rank)


def get_group_rank(group, global_rank: int) -> int:
    """The rank in ``group`` of ``global_rank`` (``ValueError`` when not a member)."""
    core = _cw.world() if group is None else group._core
    return core.group_rank(global_rank)


def _get_default_group() -> ProcessGroup:
    if GroupMember.WORLD is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return GroupMember.WORLD


def _get_group_size(group) -> int:
    return get_world_size(group)


def collective_table() -> str:
    """The native/emulated table of the backend in use (text)."""
    return _table.describe(_cw.backend() if _cw.is_initialized() else "mccl")


# ------------------------------------------------------------------------------------------------ helpers
def _write(dst: Tensor, ms_result, fresh: bool = False) -> None:
    # MindSpore's collectives hand a 0-d input back as shape (1,): give the result dst's shape (same numel).
    # torch's c10d writes outside autograd, so a leaf that requires grad may receive (megatron's pipeline p2p
    # receives into `torch.empty(..., requires_grad=True)`): write with grad mode off, as torch records nothing.
    # fresh: `ms_result` is a new tensor nobody else holds (an all-reduce's result), already in dst's storage
    # dtype: it becomes dst's value without the defensive copy `copy_` makes of a source another tensor owns.
    from ..autograd.grad_mode import no_grad
    with no_grad():
        m = ms_result.reshape(tuple(dst.shape))
        if fresh and not dst._dt.emulated and m.dtype == dst._dt.ms:
            _assign(dst, m)
        else:
            dst.copy_(wrap(m, dtype=dst.dtype))


def _check_tensor(t, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


# -------------------------------------------------------------------------------------------- collectives
def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over the group with ``op``; every rank's ``tensor`` is overwritten (in place) with the
    result. Maps to MindSpore ``AllReduce`` where native, else the emulation in ``shim/_comm/ops.py``."""
    _check_tensor(tensor, "all_reduce: tensor")
    name = _op_name(op)
    core = _resolve(group)
    if core is None:
        return _not_member("all_reduce")
    if core.size > 1:
        _write(tensor, _ops.all_reduce(to_ms(tensor), name, core), fresh=True)
    return _work([tensor], async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Every rank's ``tensor`` into ``tensor_list[i]`` (group rank ``i``) on every rank."""
    _check_tensor(tensor, "all_gather: tensor")
    core = _resolve(group)
    if core is None:
        return _not_member("all_gather")
    if len(tensor_list) != core.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} entries, group size is {core.size}")
    parts = _ops.all_gather(to_ms(tensor), core) if core.size > 1 else [to_ms(tensor)]
    for dst, part in zip(tensor_list, parts):
        _write(dst, part.reshape(tuple(dst.shape)))
    return _work(tensor_list, async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None, async_op: bool = False):
    """Concatenate every rank's ``input_tensor`` along dim 0 into ``output_tensor`` (shape
    ``[group_size * d0, ...]`` or ``[group_size, d0, ...]``)."""
    _check_tensor(output_tensor, "all_gather_into_tensor: output_tensor")
    core = _resolve(group)
    if core is None:
        return _not_member("all_gather_into_tensor")
    if output_tensor.numel() != core.size * input_tensor.numel():
        raise ValueError(f"all_gather_into_tensor: output has {output_tensor.numel()} elements, expected "
                         f"group size {core.size} x {input_tensor.numel()}")
    parts = _ops.all_gather(to_ms(input_tensor), core) if core.size > 1 else [to_ms(input_tensor)]
    import mindspore

    flat = mindspore.ops.cat([p.reshape(-1) for p in parts]) if len(parts) > 1 else parts[0].reshape(-1)
    _write(output_tensor, flat.reshape(tuple(output_tensor.shape)))
    return _work([output_tensor], async_op)


_all_gather_base = all_gather_into_tensor


def reduce_scatter(output: Tensor, input_list: list, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """``output`` on group rank ``i`` = reduction over ranks of ``input_list[i]``."""
    _check_tensor(output, "reduce_scatter: output")
    name = _op_name(op)
    core = _resolve(group)
    if core is None:
        return _not_member("reduce_scatter")
    if len(input_list) != core.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} entries, group size is {core.size}")
    if core.size == 1:
        _write(output, to_ms(input_list[0]))
    else:
        _write(output, _ops.reduce_scatter([to_ms(t) for t in input_list], name, core).reshape(tuple(output.shape)))
    return _work([output], async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """``input`` (``[group_size * d0, ...]``) split into group-size chunks along dim 0; group rank ``i`` gets
    the reduction of everyone's chunk ``i`` in ``output``."""
    _check_tensor(output, "reduce_scatter_tensor: output")
    name = _op_name(op)
    core = _resolve(group)
    if core is None:
        return _not_member("reduce_scatter_tensor")
    if input.numel() != core.size * output.numel():
        raise ValueError(f"reduce_scatter_tensor: input has {input.numel()} elements, expected group size "
                         f"{core.size} x output's {output.numel()}")
    m = to_ms(input).reshape(core.size, -1)
    chunks = [m[i] for i in range(core.size)]
    res = _ops.reduce_scatter(chunks, name, core) if core.size > 1 else chunks[0]
    _write(output, res.reshape(tuple(output.shape)))
    return _work([output], async_op)


_reduce_scatter_base = reduce_scatter_tensor


def broadcast(tensor: Tensor, src: Optional[int] = None, group=None, async_op: bool = False,
              group_src: Optional[int] = None):
    """``tensor`` of global rank ``src`` (or group rank ``group_src``) copied into ``tensor`` on every rank."""
    _check_tensor(tensor, "broadcast: tensor")
    core = _resolve(group)
    if core is None:
        return _not_member("broadcast")
    src = core.global_rank(group_src) if group_src is not None else (0 if src is None else src)
    # An empty tensor has nothing to copy (torch requires the same shape on every rank, so all ranks skip);
    # MindSpore's Broadcast kernel fails to launch on 0 elements (Megatron-LM broadcasts an empty cu_seqlens).
    if core.size > 1 and tensor.numel() > 0:
        _write(tensor, _ops.broadcast(to_ms(tensor), src, core))
    return _work([tensor], async_op)


def reduce(tensor: Tensor, dst: Optional[int] = None, op=ReduceOp.SUM, group=None, async_op: bool = False,
           group_dst: Optional[int] = None):
    """Reduce over the group into ``tensor`` of global rank ``dst`` only (others' tensors are unchanged)."""
    _check_tensor(tensor, "reduce: tensor")
    name = _op_name(op)
    core = _resolve(group)
    if core is None:
        return _not_member("reduce")
    dst = core.global_rank(group_dst) if group_dst is not None else (0 if dst is None else dst)
    core.group_rank(dst)
    if core.size > 1:
        res = _ops.all_reduce(to_ms(tensor), name, core)
        if _cw.rank() == dst:
            _write(tensor, res)
    return _work([tensor], async_op)


def gather(tensor: Tensor, gather_list: Optional[list] = None, dst: Optional[int] = None, group=None,
           async_op: bool = False, group_dst: Optional[int] = None):
    """Every rank's ``tensor`` into ``gather_list`` of global rank ``dst`` (others pass None)."""
    _check_tensor(tensor, "gather: tensor")
    core = _resolve(group)
    if core is None:
        return _not_member("gather")
    dst = core.global_rank(group_dst) if group_dst is not None else (0 if dst is None else dst)
    core.group_rank(dst)
    me = _cw.rank()
    if me == dst and (gather_list is None or len(gather_list) != core.size):
        raise ValueError(f"gather: the destination rank must pass gather_list with {core.size} tensors")
    if me != dst and gather_list:
        raise ValueError("gather: gather_list must be None or empty on non-destination ranks")
    parts = _ops.all_gather(to_ms(tensor), core) if core.size > 1 else [to_ms(tensor)]
    if me == dst:
        for d, p in zip(gather_list, parts):
            _write(d, p.reshape(tuple(d.shape)))
    return _work(gather_list or [], async_op)


def scatter(tensor: Tensor, scatter_list: Optional[list] = None, src: Optional[int] = None, group=None,
            async_op: bool = False, group_src: Optional[int] = None):
    """``scatter_list[i]`` of global rank ``src`` into ``tensor`` of group rank ``i`` (same shapes)."""
    _check_tensor(tensor, "scatter: tensor")
    core = _resolve(group)
    if core is None:
        return _not_member("scatter")
    src = core.global_rank(group_src) if group_src is not None else (0 if src is None else src)
    core.group_rank(src)
    me = _cw.rank()
    if me == src and (scatter_list is None or len(scatter_list) != core.size):
        raise ValueError(f"scatter: the source rank must pass scatter_list with {core.size} tensors")
    if me == src:
        stacked = np.stack([_ops.to_numpy(to_ms(t)).reshape(tuple(tensor.shape)) for t in scatter_list])
    else:
        stacked = np.zeros((core.size,) + tuple(tensor.shape), _ops.to_numpy(to_ms(tensor)).dtype)
    if core.size > 1:
        stacked = _ops.to_numpy(_ops.broadcast(_ops.from_numpy(stacked), src, core))
    _write(tensor, _ops.from_numpy(np.ascontiguousarray(stacked[core.ranks.index(me)])))
    return _work([tensor], async_op)


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None, async_op: bool = False):
    """``input_tensor_list[j]`` to group rank ``j``; ``output_tensor_list[i]`` receives from group rank ``i``."""
    core = _resolve(group)
    if core is None:
        return _not_member("all_to_all")
    if len(output_tensor_list) != core.size or len(input_tensor_list) != core.size:
        raise ValueError(f"all_to_all: expected {core.size} output and input tensors, got "
                         f"{len(output_tensor_list)} and {len(input_tensor_list)}")
    got = _ops.all_to_all([to_ms(t) for t in input_tensor_list], core)
    for d, r in zip(output_tensor_list, got):
        _write(d, r.reshape(tuple(d.shape)))
    return _work(output_tensor_list, async_op)


def _split_sizes(sizes) -> Optional[list]:
    """A split-size argument of `all_to_all_single` as a list of ints, None when absent or empty (equal split).
    As torch, any sequence of integers: a list, a tuple, a NumPy array (megatron-core's token dispatcher passes
    those), a 1-D tensor."""
    if sizes is None:
        return None
    sizes = [int(s) for s in sizes]
    return sizes or None


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes: Optional[list] = None,
                      input_split_sizes: Optional[list] = None, group=None, async_op: bool = False):
    """Split ``input`` along dim 0 (``input_split_sizes`` or equally), send chunk ``j`` to group rank ``j``,
    concatenate what arrives (``output_split_sizes`` or equal) into ``output``. Split sizes: any sequence of
    ints (list, tuple, NumPy array, 1-D tensor) or None."""
    core = _resolve(group)
    if core is None:
        return _not_member("all_to_all_single")
    n = core.size
    d0 = int(input.shape[0]) if input.dim() else 0
    input_split_sizes, output_split_sizes = _split_sizes(input_split_sizes), _split_sizes(output_split_sizes)
    sizes = input_split_sizes or [d0 // n] * n
    if sum(sizes) != d0 or len(sizes) != n:
        raise ValueError(f"all_to_all_single: input_split_sizes {sizes} do not split dim 0 of size {d0} "
                         f"into {n} parts")
    m = to_ms(input)
    chunks, start = [], 0
    for s in sizes:
        chunks.append(m[start:start + s])
        start += s
    got = _ops.all_to_all(chunks, core)
    out_sizes = [int(g.shape[0]) for g in got]
    if output_split_sizes and output_split_sizes != out_sizes:
        raise ValueError(f"all_to_all_single: output_split_sizes {output_split_sizes} do not match the "
                         f"sizes sent by the peers {out_sizes}")
    import mindspore

    flat = mindspore.ops.cat(got) if len(got) > 1 else got[0]
    _write(output, flat.reshape(tuple(output.shape)))
    return _work([output], async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Block until every member reached the barrier (a synchronised one-element all-reduce)."""
    core = _resolve(group)
    if core is None:
        return _not_member("barrier")
    _ops.barrier(core)
    return Work() if async_op else None


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False):
    """Same as :func:`barrier` (no per-rank timeout reporting)."""
    return barrier(group)


# -------------------------------------------------------------------------------------- point-to-point
class _P2PWork(Work):
    def __init__(self, transfer, outputs) -> None:
        super().__init__(outputs, _p2p.flush)
        self._transfer = transfer

    def is_completed(self) -> bool:
        return self._transfer.done


def _p2p_check(tensor, peer, group, what: str) -> int:
    _check_tensor(tensor, f"{what}: tensor")
    core = _resolve(group)
    if core is None:
        raise ValueError(f"{what}: rank {_cw.rank()} is not a member of the given group")
    if peer is None:
        raise NotImplementedError(f"torch.distributed.{what} without a peer rank (any source) is not supported "
                                  f"by the shim; pass src/dst")
    if peer not in core.ranks:
        raise ValueError(f"{what}: peer rank {peer} is not in the group {list(core.ranks)}")
    return peer


def isend(tensor: Tensor, dst: Optional[int] = None, group=None, tag: int = 0, group_dst: Optional[int] = None):
    """Queue sending ``tensor`` to global rank ``dst``; returns a :class:`Work` (the data is taken now)."""
    if group_dst is not None:
        dst = get_global_rank(group, group_dst)
    dst = _p2p_check(tensor, dst, group, "isend")
    host = np.ascontiguousarray(_ops.to_numpy(to_ms(tensor)))
    tr = _p2p.enqueue(dst, payload=host.reshape(-1).view(np.uint8))
    return _P2PWork(tr, [tensor])


def irecv(tensor: Tensor, src: Optional[int] = None, group=None, tag: int = 0, group_src: Optional[int] = None):
    """Queue receiving into ``tensor`` (the sender's shape and dtype) from global rank ``src``."""
    if group_src is not None:
        src = get_global_rank(group, group_src)
    src = _p2p_check(tensor, src, group, "irecv")
    host = _ops.to_numpy(to_ms(tensor))
    dtype, shape = host.dtype, host.shape

    def done(buf: np.ndarray) -> None:
        _write(tensor, _ops.from_numpy(buf.copy().view(dtype).reshape(shape)))

    tr = _p2p.enqueue(src, nbytes=host.nbytes, on_done=done)
    return _P2PWork(tr, [tensor])


def send(tensor: Tensor, dst: Optional[int] = None, group=None, tag: int = 0, group_dst: Optional[int] = None) -> None:
    """Send ``tensor`` to global rank ``dst`` (blocks until the transfer ran)."""
    isend(tensor, dst, group, tag, group_dst).wait()


def recv(tensor: Tensor, src: Optional[int] = None, group=None, tag: int = 0, group_src: Optional[int] = None) -> int:
    """Receive into ``tensor`` from global rank ``src``; returns ``src``."""
    irecv(tensor, src, group, tag, group_src).wait()
    return src if group_src is None else get_global_rank(group, group_src)


class P2POp:
    """One operation of :func:`batch_isend_irecv`: ``op`` is ``isend``/``irecv`` (or ``send``/``recv``),
    ``peer`` a global rank."""

    def __init__(self, op: Callable, tensor: Tensor, peer: Optional[int] = None, group=None, tag: int = 0,
                 group_peer: Optional[int] = None) -> None:
        if op not in (isend, irecv, send, recv):
            raise ValueError("P2POp: op must be torch.distributed.isend/irecv (or send/recv)")
        self.op = isend if op in (isend, send) else irecv
        self.tensor, self.group, self.tag = tensor, group, tag
        self.peer = get_global_rank(group, group_peer) if group_peer is not None else peer

    def __repr__(self) -> str:
        return f"P2POp({self.op.__name__}, peer={self.peer})"


def batch_isend_irecv(p2p_op_list: list) -> list:
    """Run a list of :class:`P2POp` as one exchange; returns their (completed) :class:`Work` handles."""
    if not p2p_op_list or not all(isinstance(p, P2POp) for p in p2p_op_list):
        raise ValueError("batch_isend_irecv: expected a non-empty list of torch.distributed.P2POp")
    works = [p.op(p.tensor, p.peer, p.group, p.tag) for p in p2p_op_list]
    _p2p.flush()
    return works


# ------------------------------------------------------------------------------------ object collectives
def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    pickle.Pickler(buf).dump(obj)
    return buf.getvalue()


def all_gather_object(object_list: list, obj: Any, group=None) -> None:
    """Every rank's picklable ``obj`` into ``object_list[i]`` (group rank ``i``) on every rank."""
    core = _resolve(group)
    if core is None:
        return _not_member("all_gather_object")
    if len(object_list) != core.size:
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries, group size is {core.size}")
    for i, blob in enumerate(_ops.gather_varbytes(core, _dumps(obj))):
        object_list[i] = pickle.loads(blob)


def gather_object(obj: Any, object_gather_list: Optional[list] = None, dst: Optional[int] = None, group=None,
                  group_dst: Optional[int] = None) -> None:
    """Every rank's ``obj`` into ``object_gather_list`` of global rank ``dst``."""
    core = _resolve(group)
    if core is None:
        return _not_member("gather_object")
    dst = core.global_rank(group_dst) if group_dst is not None else (0 if dst is None else dst)
    me = _cw.rank()
    if me == dst and (object_gather_list is None or len(object_gather_list) != core.size):
        raise ValueError(f"gather_object: the destination rank must pass a list of {core.size} entries")
    blobs = _ops.gather_varbytes(core, _dumps(obj))
    if me == dst:
        for i, blob in enumerate(blobs):
            object_gather_list[i] = pickle.loads(blob)


def broadcast_object_list(object_list: list, src: Optional[int] = None, group=None, device=None,
                          group_src: Optional[int] = None) -> None:
    """The objects of ``object_list`` on global rank ``src`` replace every rank's entries (same length)."""
    core = _resolve(group)
    if core is None:
        return _not_member("broadcast_object_list")
    src = core.global_rank(group_src) if group_src is not None else (0 if src is None else src)
    src_g = core.group_rank(src)
    me = _cw.rank()
    payload = _dumps(list(object_list)) if me == src else b""
    size = np.zeros(1, np.int64)
    size[0] = len(payload)
    n = int(_ops.broadcast_bytes(core, size.view(np.uint8) if me == src else None, 8, src_g).view(np.int64)[0])
    data = _ops.broadcast_bytes(core, np.frombuffer(payload, np.uint8) if me == src else None, n, src_g)
    objs = pickle.loads(data.tobytes())
    if len(objs) != len(object_list):
        raise ValueError(f"broadcast_object_list: source list has {len(objs)} entries, this rank's has "
                         f"{len(object_list)}")
    object_list[:] = objs


def scatter_object_list(scatter_object_output_list: list, scatter_object_input_list: Optional[list] = None,
                        src: Optional[int] = None, group=None, group_src: Optional[int] = None) -> None:
    """``scatter_object_input_list[i]`` of ``src`` into ``scatter_object_output_list[0]`` of group rank ``i``."""
    core = _resolve(group)
    if core is None:
        return _not_member("scatter_object_list")
    src = core.global_rank(group_src) if group_src is not None else (0 if src is None else src)
    objs = [list(scatter_object_input_list or [])]
    broadcast_object_list(objs, src, group)
    scatter_object_output_list[0] = objs[0][core.ranks.index(_cw.rank())]


__all__ = [
    "Backend", "ReduceOp", "reduce_op", "ProcessGroup", "GroupMember", "group", "Work", "P2POp",
    "default_pg_timeout", "is_available", "is_initialized", "is_gloo_available", "is_nccl_available",
    "is_mpi_available", "is_torchelastic_launched", "init_process_group", "destroy_process_group", "get_rank",
    "get_world_size", "get_backend", "new_group", "new_subgroups_by_enumeration", "get_process_group_ranks",
    "get_global_rank", "get_group_rank", "all_reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
    "reduce_scatter_tensor", "broadcast", "reduce", "gather", "scatter", "all_to_all", "all_to_all_single",
    "barrier", "monitored_barrier", "send", "recv", "isend", "irecv", "batch_isend_irecv",
    "all_gather_object", "gather_object", "broadcast_object_list", "scatter_object_list", "collective_table",
]

from .._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.distributed.distributed_c10d")
