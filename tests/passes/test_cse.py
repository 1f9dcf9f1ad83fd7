"""cse keeps one node per distinct computation."""
from hypothesis import given, settings

from graphc.ir import GraphBuilder, verify
from graphc.passes import cse
from pass_graphs import assert_same_results, graphs, random_inputs


def test_cse_merges_identical_nodes():
    b = GraphBuilder()
    x = b.input("x", "user", (4,), "float32")
    e1 = b.add("exp", [x], {}, (4,), "float32")
    e2 = b.add("exp", [x], {}, (4,), "float32")
    s = b.add("add", [e1, e2], {}, (4,), "float32")
    graph = verify(cse(b.finish([s])))
    assert [n.op for n in graph.nodes] == ["input", "exp", "add"]
    assert graph.nodes[2].inputs == (1, 1)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_cse_keeps_results_on_random_graphs(graph):
    after = verify(cse(graph))
    assert_same_results(graph, after, random_inputs(graph))
    computations = [(n.op, n.inputs, n.attrs) for n in after.nodes if n.op != "input"]
    assert len(computations) == len(set(computations))
