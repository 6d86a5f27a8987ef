"""``torch.utils.hooks``: ``RemovableHandle`` (the facade's one, defined with ``torch.nn.Module``'s hooks)."""
from ..nn.modules.module import RemovableHandle

__all__ = ["RemovableHandle"]
