"""DataLoader: batches of a data set, in the order of a sampler, merged by a collate function.

Loading runs in the calling process. `num_workers` is accepted (and checked) so PyTorch code
runs unchanged, and PyTorch's other worker arguments are accepted and ignored; with no worker
processes `get_worker_info()` is None, so an IterableDataset that shards by worker yields
everything once. `pin_memory` has nothing to do on the cpu.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

from ...random import Generator
from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

# PyTorch's arguments for worker processes, which have no effect when loading in-process
_WORKER_ARGUMENTS = frozenset({"timeout", "worker_init_fn", "multiprocessing_context", "prefetch_factor",
                               "persistent_workers", "pin_memory_device", "in_order"})


def get_worker_info() -> None:
    """Information about the worker process running the code: always None, since graphc loads in-process."""
    return None


class DataLoader:
    """Iterates over batches of `dataset` (PyTorch's arguments and defaults)."""

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable[int] | None = None,
                 batch_sampler: Sampler | Iterable[list[int]] | None = None, num_workers: int = 0,
                 collate_fn: Callable[[Any], Any] | None = None, pin_memory: bool = False, drop_last: bool = False,
                 generator: Generator | None = None, **worker_arguments: Any) -> None:
        unknown = sorted(set(worker_arguments) - _WORKER_ARGUMENTS)
        if unknown:
            raise TypeError(f"DataLoader.__init__() got an unexpected keyword argument {unknown[0]!r}")
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        self.dataset, self.num_workers, self.pin_memory = dataset, num_workers, pin_memory
        self.drop_last, self.generator = drop_last, generator
        if isinstance(dataset, IterableDataset):
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, "
                                     f"but got {name}={value}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if sampler is None and not isinstance(dataset, IterableDataset):
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and sampler is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        batched = batch_size is not None or batch_sampler is not None
        self.collate_fn = collate_fn or (default_collate if batched else default_convert)

    def _index_batches(self) -> Iterator[Any]:
        """Lists of samples (batched) or single samples, before collation."""
        if isinstance(self.dataset, IterableDataset):
            samples = iter(self.dataset)
            if self.batch_size is None:
                yield from samples
                return
            while batch := list(itertools.islice(samples, self.batch_size)):
                if len(batch) == self.batch_size or not self.drop_last:
                    yield batch
        elif self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield [self.dataset[i] for i in indices]
        else:
            for index in self.sampler:
                yield self.dataset[index]

    def __iter__(self) -> Iterator[Any]:
        return (self.collate_fn(batch) for batch in self._index_batches())

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            samples = len(self.dataset)  # type: ignore[arg-type]  (a TypeError when it has no length)
            if self.batch_size is None:
                return samples
            return samples // self.batch_size if self.drop_last else -(-samples // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)  # type: ignore[arg-type]
