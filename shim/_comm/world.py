"""Process-group bookkeeping of the communication core: joining the job, the world, sub-groups.

State is per process (one job per process, as in torch). The launcher (``shim/launcher``) starts every worker
with MindSpore's dynamic-cluster variables (``MS_ROLE=MS_WORKER``, ``MS_SCHED_HOST``, ``MS_SCHED_PORT``,
``MS_WORKER_NUM``, ``MS_NODE_ID``), torch's (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` ...), Ascend's
(``RANK_ID``, ``RANK_SIZE``, ``DEVICE_ID``) and the address of its store (``SHIM_STORE_ADDR``,
``SHIM_STORE_PORT``). :func:`init` checks the rank the program asked for against the launcher's, records the
join in the store (so a rank that never arrives is named after the timeout), then calls
``mindspore.communication.init()``, which forms the cluster and picks the platform library (``mccl`` on CPU).

A job of one process (``world_size == 1``, no launcher) needs no MindSpore cluster: every collective is then
the identity and is computed locally.

Groups: MindSpore names communicators; :func:`group_name` derives the name from the sorted global ranks, so
every member computes the same name without talking, and :func:`new_group` returns the same
:class:`Group` for the same rank set.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .store import StoreClient, StoreError


class CommError(RuntimeError):
    """A communication-core failure with a message that names what failed (rank, group, collective)."""


@dataclass(frozen=True)
class Group:
    """A set of global ranks with a MindSpore communicator name.

    ``ranks``: sorted global ranks; ``name``: the MindSpore group name (the world group's own name for the
    whole world; ``""`` for a local one-process world). ``is_world``: whether it is the default group.
    """

    ranks: tuple[int, ...]
    name: str
    is_world: bool

    @property
    def size(self) -> int:
        """Number of members."""
        return len(self.ranks)

    def group_rank(self, global_rank: int) -> int:
        """The position of ``global_rank`` in this group; ``ValueError`` naming both if not a member."""
        try:
            return self.ranks.index(global_rank)
        except ValueError:
            raise ValueError(f"global rank {global_rank} is not a member of group {list(self.ranks)}") from None

    def global_rank(self, group_rank: int) -> int:
        """The global rank at position ``group_rank``; ``ValueError`` if out of range."""
        if not 0 <= group_rank < len(self.ranks):
            raise ValueError(f"group rank {group_rank} out of range for group {list(self.ranks)}")
        return self.ranks[group_rank]


@dataclass
class MindSporeProcess:
    """What MindSpore's communication did in this process. It outlives a job (MindSpore's cluster and the groups
    it created are torn down only at process exit), so :func:`destroy` carries it over to the next state."""

    initialized: bool = False    # mindspore.communication.init() ran (it runs once per process)
    created: set = field(default_factory=set)   # MindSpore group names created in this process
    jobs: int = 0                # jobs joined so far in this process (numbers each job's arrival keys)


@dataclass
class CommState:
    """Everything the communication core holds about the job this process joined, in one object:
    :func:`destroy` replaces it whole (keeping only ``mindspore``, see :class:`MindSporeProcess`).

    ``world``/``groups``: the default group and every group by sorted rank tuple; ``prims``: MindSpore
    collective primitives by (kind, group name, extra arguments) (``ops``); ``arrivals``: collectives so far per
    group name (the store rendezvous, ``ops._arrive``); ``p2p_pending``/``p2p_seq``: queued point-to-point
    transfers and the sequence number per (source, destination) (``p2p``); ``hostnet``: this process's endpoint of
    the direct host transport (``hostnet``), made on first use; ``job``: this job's number in the
    process (names its arrival keys, so that keys a destroyed job left in the launcher's store never answer
    for the next one).
    """

    rank: int = -1
    world_size: int = 0
    backend: str = ""            # the MindSpore library really in use: "mccl" / "hccl" / "nccl" / "local"
    local: bool = False          # one-process world without a MindSpore cluster
    world: Optional[Group] = None
    groups: dict = field(default_factory=dict)   # tuple(ranks) -> Group
    store: Optional[StoreClient] = None
    job: int = 0
    prims: dict = field(default_factory=dict)
    arrivals: dict = field(default_factory=dict)
    p2p_pending: list = field(default_factory=list)
    p2p_seq: dict = field(default_factory=dict)
    hostnet: Optional[object] = None   # hostnet.HostNet once the host transport was used (closed by destroy)
    mindspore: MindSporeProcess = field(default_factory=MindSporeProcess)


_state = CommState()


def state() -> CommState:
    """The current :class:`CommState` (a new object after :func:`destroy`: fetch it per use, do not keep it)."""
    return _state


def is_initialized() -> bool:
    """Whether :func:`init` has run (and :func:`destroy` has not)."""
    return _state.world is not None


def _require() -> CommState:
    if _state.world is None:
        raise CommError("the default process group is not initialized; call "
                        "torch.distributed.init_process_group() first")
    return _state


def rank() -> int:
    """This process's global rank."""
    return _require().rank


def world_size() -> int:
    """Number of processes in the job."""
    return _require().world_size


def backend() -> str:
    """The collective library in use: ``"mccl"`` (MindSpore CPU), ``"hccl"`` (Ascend), ``"nccl"`` (GPU) or
    ``"local"`` (one-process world, no library)."""
    return _require().backend


def world() -> Group:
    """The default (world) group."""
    return _require().world  # type: ignore[return-value]


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise CommError(f"environment variable {name}={value!r} is not an integer") from None


def _parse_tcp(init_method: str) -> tuple[str, int]:
    rest = init_method[len("tcp://"):].split("?")[0].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"init_method {init_method!r}: expected tcp://HOST:PORT")
    return host.strip("[]"), int(port)


def _wait_for_join(store: StoreClient, my_rank: int, size: int, timeout: float) -> None:
    store.set(f"joined/{my_rank}", str(os.getpid()))
    deadline = time.monotonic() + timeout
    while True:
        joined = {int(k.split("/", 1)[1]) for k in store.keys("joined/")}
        if len(joined) >= size:
            return
        if time.monotonic() >= deadline:
            missing = sorted(set(range(size)) - joined)
            raise CommError(f"init_process_group: timed out after {timeout:.0f} s waiting for rank(s) "
                            f"{missing} of world_size {size} to join (joined: {sorted(joined)})")
        time.sleep(0.1)


def init(*, rank: Optional[int] = None, world_size: Optional[int] = None, init_method: Optional[str] = None,
         timeout: float = 1800.0) -> None:
    """Join the job: validate rank/world size against the launcher, rendezvous, start MindSpore communication.

    ``rank``/``world_size`` default to ``RANK``/``WORLD_SIZE`` from the launcher; when given they must agree
    with the launcher's values (``ValueError`` naming both otherwise). ``init_method``: ``None``/``"env://"``
    or ``"tcp://HOST:PORT"`` (must name the launcher's master when run under it). ``timeout`` (seconds) bounds
    the wait for all ranks to join (``CommError`` naming the missing ranks) and MindSpore's topology build.

    Raises ``CommError`` when called twice, or with ``world_size > 1`` outside the launcher.
    """
    if _state.world is not None:
        raise CommError("init_process_group: the default process group is already initialized")
    if init_method not in (None, "", "env://") and not str(init_method).startswith(("tcp://", "env://")):
        raise ValueError(f"init_process_group: init_method {init_method!r} is not supported; "
                         f"use 'env://' or 'tcp://HOST:PORT' (file:// is not)")
    env_rank, env_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    size = world_size if world_size is not None and world_size >= 0 else env_size
    me = rank if rank is not None and rank >= 0 else env_rank
    launched = os.environ.get("MS_ROLE") == "MS_WORKER"
    if size is None:
        size = 1 if not launched else _env_int("MS_WORKER_NUM")
    if me is None:
        me = 0 if not launched else _env_int("MS_NODE_ID")
    if not launched:
        if size != 1:
            raise CommError(f"init_process_group: world_size={size} needs the launcher (python -m shim.launcher "
                            f"/ torchrun / python -m torch.distributed.launch under the shim) to start the "
                            f"MindSpore cluster; this process was not started by it (MS_ROLE unset)")
        if me != 0:
            raise ValueError(f"init_process_group: rank={me} with world_size=1; expected rank 0")
        _state.rank, _state.world_size, _state.backend, _state.local = 0, 1, "local", True
        _state.world = Group((0,), "", True)
        _state.groups = {(0,): _state.world}
        return

    ms_rank, ms_size = _env_int("MS_NODE_ID"), _env_int("MS_WORKER_NUM")
    if size != ms_size:
        raise ValueError(f"init_process_group: world_size={size} but the launcher started {ms_size} processes "
                         f"(WORLD_SIZE={env_size}); pass the launcher's value (e.g. int(os.environ['WORLD_SIZE']))")
    if me != ms_rank:
        raise ValueError(f"init_process_group: rank={me} but the launcher gave this process rank {ms_rank} "
                         f"(RANK={env_rank}, RANK_ID={os.environ.get('RANK_ID')})")
    if init_method and str(init_method).startswith("tcp://"):
        host, port = _parse_tcp(str(init_method))
        master = (os.environ.get("MASTER_ADDR"), _env_int("MASTER_PORT"))
        if port != master[1]:
            raise ValueError(f"init_process_group: init_method {init_method!r} does not name the launcher's "
                             f"master {master[0]}:{master[1]}")

    store_addr, store_port = os.environ.get("SHIM_STORE_ADDR"), _env_int("SHIM_STORE_PORT")
    if store_addr and store_port:
        try:
            store = StoreClient(store_addr, store_port, connect_timeout=min(timeout, 60.0))
            _wait_for_join(store, me, size, timeout)
        except StoreError as exc:
            raise CommError(f"init_process_group (rank {me}): {exc}") from exc
        _state.store = store
    os.environ.setdefault("MS_TOPO_TIMEOUT", str(int(max(timeout, 1))))

    # import cost: MindSpore is imported when a job forms its cluster, not when `shim._comm` is imported (the
    # launcher and the table/store tests use this package without MindSpore)
    from mindspore.communication import GlobalComm, get_group_size, get_rank
    from mindspore.communication import init as ms_init

    ms = _state.mindspore
    if not ms.initialized:
        ms_init()
        ms.initialized = True
    got_rank, got_size = get_rank(), get_group_size()
    if (got_rank, got_size) != (me, size):
        raise CommError(f"MindSpore formed the cluster with rank {got_rank} of {got_size}, expected {me} of {size}")
    ms.jobs += 1
    _state.rank, _state.world_size, _state.local, _state.job = me, size, False, ms.jobs
    _state.backend = str(GlobalComm.BACKEND)
    world_name = str(GlobalComm.WORLD_COMM_GROUP)
    _state.world = Group(tuple(range(size)), world_name, True)
    _state.groups = {tuple(range(size)): _state.world}


def group_name(ranks: Sequence[int]) -> str:
    """The deterministic MindSpore group name for a sorted rank set: ``shim_g_<r0>_<r1>...`` or, past 16
    members, ``shim_g_n<count>_<sha1 prefix>``. Every member derives it without communicating."""
    ranks = tuple(ranks)
    if len(ranks) <= 16:
        return "shim_g_" + "_".join(str(r) for r in ranks)
    digest = hashlib.sha1(",".join(map(str, ranks)).encode()).hexdigest()[:16]
    return f"shim_g_n{len(ranks)}_{digest}"


def new_group(ranks: Optional[Sequence[int]]) -> Group:
    """The group of the given global ``ranks`` (``None``: the world), created on first use.

    Only members create the MindSpore communicator (``mindspore.communication.create_group``); non-members
    get a :class:`Group` object too (the facade maps it to ``GroupMember.NON_GROUP_MEMBER``). The same rank set
    returns the same object. Raises ``ValueError`` for duplicate or out-of-range ranks.
    """
    st = _require()
    if ranks is None:
        return st.world  # type: ignore[return-value]
    key = tuple(sorted(int(r) for r in ranks))
    if len(set(key)) != len(key):
        raise ValueError(f"new_group: duplicate ranks in {list(ranks)}")
    if not key:
        raise ValueError("new_group: empty rank list")
    if key[0] < 0 or key[-1] >= st.world_size:
        raise ValueError(f"new_group: ranks {list(ranks)} out of range for world_size {st.world_size}")
    found = st.groups.get(key)
    if found is not None:
        return found
    group = Group(key, group_name(key), False)
    st.groups[key] = group
    return group


def ensure_created(group: Group) -> None:
    """Create the MindSpore communicator of ``group`` in this process if not done (members only)."""
    st = _require()
    if group.is_world or st.local or group.name in st.mindspore.created:
        return
    if st.rank not in group.ranks:
        raise CommError(f"rank {st.rank} used group {list(group.ranks)} it is not a member of")
    from mindspore.communication import create_group  # import cost: see init()

    create_group(group.name, list(group.ranks))
    st.mindspore.created.add(group.name)


def store() -> Optional[StoreClient]:
    """The launcher's store client (None in a one-process world or when started without the store)."""
    return _state.store


def destroy() -> None:
    """Leave the job: close the store connection and replace the :class:`CommState` whole (groups, primitives,
    arrival counts, queued point-to-point transfers). MindSpore's cluster itself is torn down at process exit (it
    cannot be re-formed in the same process); a later :func:`init` in the same process reuses it."""
    global _state
    if _state.world is None:
        return
    if _state.hostnet is not None:
        _state.hostnet.close()
    if _state.store is not None:
        _state.store.close()
    _state = CommState(mindspore=_state.mindspore)


__all__ = ["CommError", "Group", "CommState", "MindSporeProcess", "state", "init", "is_initialized", "rank",
           "world_size", "backend", "world", "new_group", "group_name", "ensure_created", "destroy", "store"]
