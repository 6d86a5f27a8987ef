"""megatron-core `dist_checkpointing.save`/`load` in the `torch_dist` format, in one process (world size 1).

Usage: torch_dist_checkpoint_check.py MODE DIR
  save_shim  under the shim: save a small sharded state dict to DIR (two chunks of one key, a layer-stacked key with
             a prepended axis, a ShardedObject, a common value), load it back whole; prints RESULT {json}
             (values read back or the error raised, the files written, the class of megatron's default
             torch_dist save strategy)
  load_real  on real torch: load DIR with megatron-core's own torch_dist strategy (DCP); prints RESULT {json}
(Real torch's saves into the shim are covered by tests/shim/test_megatron_checkpoint_shim.py with tools/train.py.)
"""
import json
import os
import socket
import sys


def main() -> None:
    """Everything runs here, not at import: megatron's torch_dist writer starts a multiprocessing Manager with
    the spawn method, and a spawned child imports this script as its main module."""
    mode, directory = sys.argv[1], sys.argv[2]
    if mode.endswith("_shim"):
        import shim
        shim.activate()

    import torch  # the facade after activate()
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    dist.init_process_group("gloo", rank=0, world_size=1)

    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.mapping import ShardedObject, ShardedTensor

    W = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7.0
    L = torch.arange(10, dtype=torch.float32).reshape(2, 5) - 3.5  # two stacked layers of shape [5]

    def template(with_data: bool):
        """The sharded state dict; `with_data=False` gives the loading template (empty tensors of the right
        shape)."""
        w = W if with_data else torch.zeros(4, 6)
        layers = [L[i] if with_data else torch.zeros(5) for i in range(2)]
        sd = {
            "model": {
                # key "w" saved as two row blocks from this rank (loaded below as one box)
                "w_top": ShardedTensor.from_rank_offsets("w", w[:2].clone(), (0, 0, 2)),
                "w_bottom": ShardedTensor.from_rank_offsets("w", w[2:].clone(), (0, 1, 2)),
                # megatron's layer stacking: global [2, 5], each layer a [5] tensor with one prepended axis
                "layers": [ShardedTensor.from_rank_offsets("stack", layers[i], (0, i, 2), prepend_axis_num=1)
                           for i in range(2)],
            },
            "obj": ShardedObject("extra", {"a": [1, 2], "t": torch.tensor([3, 4])} if with_data else None, (1,), (0,),
                                 replica_id=0),
            "iteration": 7,
        }
        return sd

    def load_template():
        return {
            "model": {"w": ShardedTensor.from_rank_offsets("w", torch.zeros(4, 6)),
                      "layers": [ShardedTensor.from_rank_offsets("stack", torch.zeros(5), (0, i, 2), prepend_axis_num=1)
                                 for i in range(2)]},
            "obj": ShardedObject("extra", None, (1,), (0,), replica_id=0),
        }

    def summary(state):
        obj = state["obj"]
        return {"w": state["model"]["w"].tolist(), "stack": [t.tolist() for t in state["model"]["layers"]],
                "obj_a": obj["a"], "obj_t": obj["t"].tolist(), "iteration": state.get("iteration")}

    from megatron.core.dist_checkpointing.strategies.base import StrategyAction, get_default_strategy

    strategy = type(get_default_strategy(StrategyAction.SAVE_SHARDED, "torch_dist", 1))
    result = {"mode": mode, "torch": torch.__version__, "error": None,
              "strategy": f"{strategy.__module__}.{strategy.__qualname__}"}
    if mode.endswith("_shim"):
        from megatron_patches import registry

        result["patches"] = sorted(p.name for p in registry.registered() if p.applied)
    try:
        if mode == "save_shim":
            dist_checkpointing.save(template(True), directory)
            result["files"] = sorted(os.listdir(directory))
        if mode in ("save_shim", "load_real"):
            result.update(summary(dist_checkpointing.load(load_template(), directory)))
            result["expected"] = {"w": W.tolist(), "stack": [L[0].tolist(), L[1].tolist()]}
    except Exception as e:  # reported to the test, which decides
        result["error"] = f"{type(e).__name__}: {e}"
    print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
