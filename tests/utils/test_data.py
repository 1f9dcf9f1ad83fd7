"""graphc.utils.data against torch.utils.data: batches, dtypes, lengths, samplers and splits."""
import collections
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.utils import data
from graphc.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                               SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, default_collate,
                               default_convert, random_split)

Point = collections.namedtuple("Point", "x y")


@pytest.fixture(autouse=True)
def _seeded():
    graphc.manual_seed(0)


def _features_and_labels(n=10):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, 4, size=n)


def _plain(value):
    """A batch as nested Python data with dtype names, for comparing graphc's and torch's."""
    if hasattr(value, "numpy") and hasattr(value, "dtype"):
        array = value.detach().numpy() if hasattr(value, "detach") else value.numpy()
        return ("tensor", str(value.dtype).split(".")[-1].replace("bool_", "bool"), array.shape, array.tolist())
    if isinstance(value, dict):
        return (type(value).__name__, {k: _plain(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_plain(v) for v in value])
    return value


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return {"i": i, "square": float(i * i), "even": i % 2 == 0, "name": f"s{i}",
                "pair": (np.float64(i), np.arange(2) + i), "point": Point(i, [i, -i])}

    def __len__(self):
        return self.n


class Stream(IterableDataset):
    def __init__(self, n, sized=True):
        self.n, self.sized = n, sized

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        if not self.sized:
            raise TypeError("no length")
        return self.n


class TorchSquares:
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return Squares(self.n)[i]

    def __len__(self):
        return self.n


# --- data sets --------------------------------------------------------------------------------
def test_tensor_dataset_rows_and_length():
    x, y = _features_and_labels()
    ds = TensorDataset(graphc.tensor(x), graphc.tensor(y))
    assert len(ds) == 10
    row, label = ds[3]
    assert np.array_equal(row.numpy(), x[3]) and label.item() == y[3] and label.dtype == graphc.int64
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(graphc.zeros(3, 2), graphc.zeros(4))


def test_subset_and_concat(torch):
    base = TensorDataset(graphc.arange(10))
    subset = Subset(base, [7, 2, 5])
    assert len(subset) == 3 and subset[0][0].item() == 7 and [s.item() for s in subset[[2, 1]][0]] == [5, 2]
    both = ConcatDataset([Subset(base, range(3)), base])
    theirs = torch.utils.data.ConcatDataset([torch.utils.data.Subset(range(10), range(3)), range(10)])
    assert len(both) == len(theirs) == 13 and both.cumulative_sizes == theirs.cumulative_sizes
    assert [both[i][0].item() for i in range(-13, 13)] == [theirs[i] for i in range(-13, 13)]
    with pytest.raises(ValueError, match="should not exceed dataset length"):
        both[-14]
    with pytest.raises(IndexError):
        both[13]
    added = base + base
    assert isinstance(added, ConcatDataset) and len(added) == 20
    with pytest.raises(AssertionError, match="does not support IterableDataset"):
        ConcatDataset([base, Stream(3)])


@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (10, [0.3, 0.3, 0.4]), (11, [0.5, 0.5]),
                                        (7, [0.1, 0.2, 0.7]), (5, [1.0]), (3, [0.25, 0.25, 0.25, 0.25])])
def test_random_split_sizes_match_torch_and_splits_are_disjoint(torch, n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = random_split(TensorDataset(graphc.arange(n)), lengths, generator=graphc.Generator().manual_seed(1))
        theirs = torch.utils.data.random_split(range(n), lengths, generator=torch.Generator().manual_seed(1))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    drawn = [s[i][0].item() for s in ours for i in range(len(s))]
    assert sorted(drawn) == list(range(n))


def test_random_split_is_reproducible_and_checks_its_lengths():
    ds = TensorDataset(graphc.arange(20))
    first = [s.indices for s in random_split(ds, [5, 15], generator=graphc.Generator().manual_seed(3))]
    again = [s.indices for s in random_split(ds, [5, 15], generator=graphc.Generator().manual_seed(3))]
    other = [s.indices for s in random_split(ds, [5, 15], generator=graphc.Generator().manual_seed(4))]
    assert first == again != other
    graphc.manual_seed(9)
    global_first = [s.indices for s in random_split(ds, [10, 10])]
    graphc.manual_seed(9)
    assert [s.indices for s in random_split(ds, [10, 10])] == global_first
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(ds, [5, 5])
    with pytest.raises(ValueError, match="Fraction at index 1 is not between 0 and 1"):
        random_split(ds, [0.5, 1.5, -1.0])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(TensorDataset(graphc.arange(1)), [0.5, 0.5])


# --- collation --------------------------------------------------------------------------------
def test_default_collate_matches_torch(torch):
    samples = [Squares(4)[i] for i in range(3)]
    ours, theirs = default_collate(samples), torch.utils.data.default_collate(samples)
    assert _plain(ours) == _plain(theirs)
    assert ours["i"].dtype == graphc.int64 and ours["square"].dtype == graphc.float64
    assert ours["even"].dtype == graphc.bool_ and ours["name"] == ["s0", "s1", "s2"]
    assert isinstance(ours["pair"], list) and isinstance(ours["point"], Point)


@pytest.mark.parametrize("samples", [
    [np.float32(1.5), np.float32(2)], [np.float64(1.5), np.float64(2)], [np.int64(3), np.int64(4)],
    [np.zeros((2, 2)), np.ones((2, 2))], [np.zeros(3, np.float32), np.ones(3, np.float32)],
    [[1, 2.0], [3, 4.0]], [(True, "a"), (False, "b")], [collections.OrderedDict(b=1, a=2)] * 2,
])
def test_default_collate_dtypes_match_torch(torch, samples):
    assert _plain(default_collate(samples)) == _plain(torch.utils.data.default_collate(samples))


@pytest.mark.parametrize("sample", [np.arange(3), (np.float32(2.0), [1, 2]), {"a": np.zeros(2)}, "text", 3])
def test_default_convert_matches_torch(torch, sample):
    assert _plain(default_convert(sample)) == _plain(torch.utils.data.default_convert(sample))


def test_default_collate_errors_match_torch(torch):
    for bad in ([graphc.zeros(2), graphc.zeros(3)], [[1, 2], [1]], [object(), object()], [np.array(["a"])] * 2):
        with pytest.raises(Exception) as ours:
            default_collate(bad)
        torch_bad = [torch.zeros(2), torch.zeros(3)] if isinstance(bad[0], graphc.Tensor) else bad
        with pytest.raises(Exception) as theirs:
            torch.utils.data.default_collate(torch_bad)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value).split(";")[0] == str(theirs.value).split(";")[0]


# --- the loader -------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (3, False), (3, True), (10, True), (12, True),
                                                   (None, False)])
def test_loader_batches_match_torch(torch, batch_size, drop_last):
    x, y = _features_and_labels()
    ours = DataLoader(TensorDataset(graphc.tensor(x), graphc.tensor(y)), batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]


def test_loader_over_a_dataset_of_dicts_matches_torch(torch):
    ours = DataLoader(Squares(7), batch_size=3)
    theirs = torch.utils.data.DataLoader(TorchSquares(7), batch_size=3)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]


def test_shuffle_is_reproducible_with_a_generator_and_with_the_global_seed():
    ds = TensorDataset(graphc.arange(17))

    def epoch(loader):
        return [b[0].tolist() for b in loader]
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=graphc.Generator().manual_seed(5))
    first, second = epoch(loader), epoch(loader)
    assert first != second and sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(17))
    again = DataLoader(ds, batch_size=4, shuffle=True, generator=graphc.Generator().manual_seed(5))
    assert epoch(again) == first and epoch(again) == second
    graphc.manual_seed(11)
    unseeded = epoch(DataLoader(ds, batch_size=4, shuffle=True))
    graphc.manual_seed(11)
    assert epoch(DataLoader(ds, batch_size=4, shuffle=True)) == unseeded
    assert [len(b) for b in unseeded] == [4, 4, 4, 4, 1]


def test_sampler_and_batch_sampler_arguments(torch):
    ds = TensorDataset(graphc.arange(10))
    ordered = DataLoader(ds, batch_size=4, sampler=[9, 8, 7, 1, 2])
    assert [b[0].tolist() for b in ordered] == [[9, 8, 7, 1], [2]] and len(ordered) == 2
    ours = BatchSampler(SequentialSampler(range(10)), 3, drop_last=False)
    theirs = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(10)), 3, drop_last=False)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    loader = DataLoader(ds, batch_sampler=ours)
    assert [b[0].tolist() for b in loader] == list(theirs) and len(loader) == 4
    assert list(BatchSampler(range(10), 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_random_samplers():
    g = graphc.Generator().manual_seed(0)
    order = list(RandomSampler(range(8), generator=g))
    assert sorted(order) == list(range(8))
    assert list(RandomSampler(range(8), generator=graphc.Generator().manual_seed(0))) == order
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2}
    longer = list(RandomSampler(range(3), num_samples=7, generator=g))
    assert sorted(longer[:3]) == sorted(longer[3:6]) == [0, 1, 2] and len(longer) == 7
    subset = list(SubsetRandomSampler([10, 20, 30, 40], generator=g))
    assert sorted(subset) == [10, 20, 30, 40] and len(SubsetRandomSampler([1, 2])) == 2
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        BatchSampler(range(3), 0, drop_last=False)


def test_custom_collate_fn():
    loader = DataLoader(Squares(5), batch_size=2, collate_fn=lambda batch: [s["i"] for s in batch])
    assert list(loader) == [[0, 1], [2, 3], [4]]


def test_iterable_dataset(torch):
    assert [b.tolist() for b in DataLoader(Stream(5), batch_size=2)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in DataLoader(Stream(5), batch_size=2, drop_last=True)] == [[0, 1], [2, 3]]
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]  # no batching: ints stay ints
    for batch_size, drop_last in ((2, False), (2, True), (None, False)):
        theirs = torch.utils.data.DataLoader(Stream(5), batch_size=batch_size, drop_last=drop_last)
        assert len(DataLoader(Stream(5), batch_size=batch_size, drop_last=drop_last)) == len(theirs)
    with pytest.raises(TypeError):
        len(DataLoader(Stream(5, sized=False), batch_size=2))
    with pytest.raises(ValueError, match="expected unspecified shuffle option, but got shuffle=True"):
        DataLoader(Stream(5), shuffle=True)


def test_loader_argument_errors_match_torch(torch):
    ds = TensorDataset(graphc.arange(4))
    cases = [dict(sampler=[0, 1], shuffle=True), dict(batch_sampler=[[0]], batch_size=2),
             dict(batch_sampler=[[0]], drop_last=True), dict(batch_size=None, drop_last=True), dict(num_workers=-1)]
    for kwargs in cases:
        with pytest.raises(ValueError) as ours:
            DataLoader(ds, **kwargs)
        with pytest.raises(ValueError) as theirs:
            torch.utils.data.DataLoader(range(4), **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        DataLoader(ds, batchsize=2)


def test_worker_arguments_load_in_process():
    ds = TensorDataset(graphc.arange(6))
    loader = DataLoader(ds, batch_size=4, num_workers=2, pin_memory=True, persistent_workers=True,
                        prefetch_factor=2, worker_init_fn=print, timeout=5)
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5]]
    assert data.get_worker_info() is None


def test_generator_api():
    g = graphc.Generator()
    assert g.initial_seed() == 67280421310721 and g.device == "cpu"
    assert g.manual_seed(3) is g and g.initial_seed() == 3
    first = graphc.randperm(6, generator=g).tolist()
    assert sorted(first) == list(range(6)) and graphc.randperm(6, generator=g.manual_seed(3)).tolist() == first
    assert graphc.randperm(4).dtype == graphc.int64
    with pytest.raises(ValueError, match="cpu only"):
        graphc.Generator("cuda")


def test_loader_feeds_a_compiled_train_step():
    """Batches come out with the dtypes and fixed shapes a compiled step is specialised for."""
    x, y = _features_and_labels(12)
    model = nn.Linear(3, 4)
    step = graphc.compile_train_step(model, nn.CrossEntropyLoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    loader = DataLoader(TensorDataset(graphc.tensor(x), graphc.tensor(y)), batch_size=4, shuffle=True,
                        drop_last=True, generator=graphc.Generator().manual_seed(0))
    losses = [float(step(features, labels)) for _ in range(5) for features, labels in loader]
    assert len(losses) == 15 and losses[-1] < losses[0]
