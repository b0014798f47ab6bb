"""``torch.utils.data`` as a program sees it: datasets of tensors, split and batched.

Tutorials feed their training loops through ``TensorDataset`` and ``DataLoader``. A real
DataLoader can also start worker processes (``num_workers``), pin memory, and run any
sampler or collate function it is handed; a program's loader does what the tutorials
ask of it, in the program's own process: a dataset, a batch size, shuffling (from
torch's global generator, so the batches are those plain PyTorch draws with the same
seed), dropping the last short batch.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch.utils.data as data

from ..errors import ProgramRejected

#: DataLoader's arguments a program may pass.
LOADER_ARGUMENTS = ("dataset", "batch_size", "shuffle", "drop_last")


class DataLoader(data.DataLoader):
    """``torch.utils.data.DataLoader`` with ``num_workers=0`` and torch's own sampler and
    collation: any other argument is refused, naming what is available."""

    def __init__(
        self,
        dataset: data.Dataset,
        batch_size: int | None = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        **refused: Any,
    ) -> None:
        if refused:
            raise ProgramRejected(
                f"DataLoader({next(iter(refused))}=...) is not available in chainlens: a "
                f"program's loader takes only {', '.join(LOADER_ARGUMENTS)}, and loads in "
                "the program's own process"
            )
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)


def data_namespace() -> types.ModuleType:
    """``torch.utils.data`` with this module's DataLoader in place of torch's (a copy: the
    real module is left as it is)."""
    module = types.ModuleType(data.__name__)
    module.__dict__.update(vars(data))
    module.__dict__["DataLoader"] = DataLoader
    return module


def dataset_item(dataset: data.Dataset, key: Any, getitem: Callable[[Any, Any], Any]) -> Any:
    """``ds[key]``. A TensorDataset indexes each of its tensors as its ``__getitem__`` does,
    but through ``getitem`` (the call gate: ``ds[idx]`` gathers copies); others (a Subset)
    take an int, whose item is a view of their source's rows."""
    if isinstance(dataset, data.TensorDataset):
        return tuple(getitem(t, key) for t in dataset.tensors)
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(
            f"a {type(dataset).__name__} is indexed by an int in chainlens, "
            f"not a {type(key).__name__}"
        )
    return dataset[key]
