"""dead_code drops what reaches no output or update and keeps every input."""
from hypothesis import given, settings

from graphc.ir import verify
from graphc.passes import dead_code
from graphc.passes.rewrite import live_nodes
from pass_graphs import assert_same_results, graphs, random_inputs, sample_program


def test_dead_code_keeps_inputs_and_drops_unused_nodes():
    program = sample_program()
    graph = dead_code(program.graph)
    assert "exp" not in [n.op for n in graph.nodes]
    assert len(graph.inputs) == len(program.graph.inputs)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_dead_code_keeps_results_on_random_graphs(graph):
    after = verify(dead_code(graph))
    assert_same_results(graph, after, random_inputs(graph))
    assert live_nodes(after) == set(range(len(after.nodes)))  # nothing dead is left
