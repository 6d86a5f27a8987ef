"""``torch.distributed.algorithms``: see :mod:`.join`."""
