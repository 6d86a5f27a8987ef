"""Point-to-point with a peer that arrives late (2 ranks, run under the shim's launcher).

Rank 1 sleeps $LATE_S seconds, longer than MindSpore CPU's ~30 s collective wait, before the first of 3
transfers to rank 0 (blocking ``send``, ``isend``, a ``batch_isend_irecv`` exchange): they must still arrive
(the host transport waits for the peer; on MindSpore's kernels (SHIM_COMM_HOST_BYTES=0) the store rendezvous
before every collective, shim/_comm/ops.py `_arrive`, does); rank 0's first receive goes
into a leaf that requires grad (megatron's pipeline buffers), which torch's c10d fills outside autograd. Then
every rank prints one JSON line ``P2P {...}`` with what it received and the ``coll/`` keys left in the
launcher's store after a barrier.
"""
import json
import os
import time

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank = dist.get_rank()
late = float(os.environ.get("LATE_S", "35"))
got = []
dist.barrier()  # both ranks start here: rank 0's wait below is rank 1's sleep
t0 = time.monotonic()
if rank == 1:
    time.sleep(late)
    dist.send(torch.tensor([1.0, 2.0]), 0)
    dist.isend(torch.tensor([3.0, 4.0]), 0).wait()
    back = torch.zeros(2)
    for req in dist.batch_isend_irecv([dist.P2POp(dist.isend, torch.tensor([5.0, 6.0]), 0),
                                       dist.P2POp(dist.irecv, back, 0)]):
        req.wait()
    got.append(back.tolist())
else:
    for i in range(2):
        # the first receive goes into a leaf that requires grad, as megatron's pipeline buffers do
        buf = torch.zeros(2, requires_grad=(i == 0))
        dist.recv(buf, 1)
        got.append(buf.tolist())
    buf = torch.zeros(2)
    for req in dist.batch_isend_irecv([dist.P2POp(dist.irecv, buf, 1),
                                       dist.P2POp(dist.isend, torch.tensor([7.0, 8.0]), 1)]):
        req.wait()
    got.append(buf.tolist())
waited = time.monotonic() - t0
dist.barrier()
from shim._comm import world  # noqa: E402  (the shim's own store: only under SHIM_BACKEND=mindspore)

keys = world.store().keys("coll/")
print("P2P " + json.dumps({"rank": rank, "got": got, "waited_s": round(waited, 1), "keys": keys}), flush=True)
dist.destroy_process_group()
