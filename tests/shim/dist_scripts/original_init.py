"""The original workflow's distributed initialisation, verbatim (see ../shared/notes/original-workflow.md),
started with ``python -m torch.distributed.launch --nproc_per_node=N`` (which passes --local-rank).

Records what each rank sees in ``$SHIM_TEST_OUT/orig_rank<RANK_ID>.json``.
"""
import argparse
import json
import os

import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
args = parser.parse_args()
local_rank = args.local_rank

# --- the original code, unmodified ---
dist.init_process_group(backend='hccl', init_method='env://', world_size=int(os.getenv('RANK_SIZE', 1)), rank=int(os.getenv('RANK_ID', 0)))
torch.cuda.set_device(local_rank)
# --------------------------------------

x = torch.tensor([float(dist.get_rank())])
dist.all_reduce(x)
with open(os.path.join(os.environ["SHIM_TEST_OUT"], f"orig_rank{os.environ['RANK_ID']}.json"), "w") as f:
    json.dump({"RANK_ID": os.environ["RANK_ID"], "RANK_SIZE": os.environ["RANK_SIZE"], "local_rank": local_rank,
               "LOCAL_RANK": os.environ["LOCAL_RANK"], "rank": dist.get_rank(), "world_size": dist.get_world_size(),
               "backend": dist.get_backend(), "current_device": torch.cuda.current_device(),
               "sum_of_ranks": x.tolist()}, f)
dist.destroy_process_group()
