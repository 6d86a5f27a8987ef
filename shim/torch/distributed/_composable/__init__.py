"""``torch.distributed._composable``: the subpackage paths libraries import from (see ``.fsdp``)."""
