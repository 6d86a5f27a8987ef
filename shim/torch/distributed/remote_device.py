"""``torch.distributed.remote_device``: ``_remote_device``, a device on some worker or rank.

The string forms (torch 2.13's rule): ``"<worker>/<device>"``, ``"rank:<n>/<device>"``, a worker or ``rank:<n>``
alone (device ``cpu``), or a local device alone (``"cpu"``, ``"cuda:1"``). ``torch.distributed._shard`` uses the
``rank:<n>/<device>`` form as a shard's placement.
"""
from __future__ import annotations

from typing import Optional, Union

from .._unsupported import module_getattr as _module_getattr

__all__: list = []


def _device_cls():
    from .._device import device  # the facade's torch.device (this package loads while shim.torch initialises)

    return device


class _remote_device:
    """A device on a remote worker (see the module docstring for the forms).

    Raises ValueError for a malformed string (empty worker, more than one ``/``, ``rank:`` without a number),
    TypeError for anything but a str or ``torch.device``. Equality and hashing use worker name, rank and device.
    """

    def __init__(self, remote_device: Union[str, object]):
        device = _device_cls()
        bad = (f"Could not parse remote_device: {remote_device}. The valid format is "
               f"'<workername>/<device>' or 'rank:<rank>/<device>' or '<device>'")
        self._worker_name: Optional[str] = None
        self._rank: Optional[int] = None
        if isinstance(remote_device, device):
            dev = remote_device
        elif isinstance(remote_device, str):
            parts = remote_device.split("/")
            if len(parts) == 2:
                self._worker_name, dev = parts
            elif len(parts) == 1:
                if self._is_valid_local_device(parts[0]):
                    dev = parts[0]
                else:
                    self._worker_name, dev = parts[0], "cpu"
            else:
                raise ValueError(bad)
        else:
            raise TypeError(f"Invalid type for remote_device: {type(remote_device)}")
        if self._worker_name is not None and not self._worker_name:
            raise ValueError(bad)
        self._device = device(dev)
        if self._worker_name is not None:
            head = self._worker_name.split(":")
            if len(head) == 2:
                if head[0] != "rank" or not head[1].isdigit():
                    raise ValueError(bad)
                self._rank, self._worker_name = int(head[1]), None
            elif len(head) > 2:
                raise ValueError(bad)

    @staticmethod
    def _is_valid_local_device(text: str) -> bool:
        try:
            _device_cls()(text)
        except (RuntimeError, ValueError, TypeError):
            return False
        return True

    def worker_name(self) -> Optional[str]:
        """The worker's name, or None (rank form or local device)."""
        return self._worker_name

    def rank(self) -> Optional[int]:
        """The rank of the ``rank:<n>`` form, or None."""
        return self._rank

    def device(self):
        """The ``torch.device`` on that worker."""
        return self._device

    def __repr__(self) -> str:
        if self._worker_name is not None:
            return f"{self._worker_name}/{self._device}"
        if self._rank is not None:
            return f"rank:{self._rank}/{self._device}"
        return str(self._device)

    def __eq__(self, other) -> bool:
        return (isinstance(other, _remote_device) and self._worker_name == other._worker_name
                and self._rank == other._rank and self._device == other._device)

    def __hash__(self) -> int:
        return hash((self._worker_name, self._rank, str(self._device)))


__getattr__ = _module_getattr("torch.distributed.remote_device")
