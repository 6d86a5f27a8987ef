"""``torch.distributed.algorithms``: :mod:`.join` (names only) and :mod:`.ddp_comm_hooks` (DDP communication hooks)."""
