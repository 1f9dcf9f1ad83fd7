"""`graphc dump --format json|dot`, `--out`, `--stage all`, unchanged passes and the plan's last line."""
import json
import os
import re
import shutil
import stat
import sys
import textwrap

import pytest

from graphc.program import PROGRAM_PASSES

from graphc.cli import main
from graphc.ir import GraphBuilder, Literal, Role
from graphc.ir.export import json_value, recorded_module_paths, to_dot, to_json
from graphc.ops.fused import Body
from graphc.passes import KERNEL_PIPELINE, PIPELINE
from test_cli import FC1_LINE, dump, model_file, stage  # noqa: F401  (model_file is a fixture)

NODE_KEYS = {"id", "op", "inputs", "attrs", "shape", "dtype", "module_path", "module_type", "source", "role"}

NESTED = textwrap.dedent("""\
    import graphc.nn as nn


    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(self.fc(x))


    class Deep(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(Block(), Block())
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.layers(x))
""")


def strict_json(text):
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))


def check_graph_schema(data):
    assert set(data) == {"inputs", "nodes", "outputs", "updates"}
    nodes = data["nodes"]
    assert [n["id"] for n in nodes] == list(range(len(nodes)))
    for node in nodes:
        assert set(node) == NODE_KEYS, node
        assert all(i < node["id"] for i in node["inputs"])
        assert isinstance(node["shape"], list) and isinstance(node["attrs"], dict)
        if node["op"] == "input":
            assert set(node["role"]) == {"kind", "key"} and "role" not in node["attrs"]
        else:
            assert node["role"] is None
    assert data["inputs"] == [n["id"] for n in nodes if n["op"] == "input"]
    assert all(set(o) == {"id", "name"} for o in data["outputs"])
    assert all(set(u) == {"value", "target"} for u in data["updates"])


# ---- json ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["traced", "after:simplify", "optimized", "joint", "backward"])
def test_graph_stages_as_json_follow_the_schema(capsys, model_file, name):
    data = strict_json(stage(capsys, model_file, name, "--format", "json"))
    check_graph_schema(data)
    if name == "backward":
        kinds = {n["role"]["kind"] for n in data["nodes"] if n["op"] == "input"}
        assert kinds == {"saved", "seed"}
        assert {o["name"] for o in data["outputs"]} >= {"grad_fc1.weight", "grad_fc2.bias"}


def test_traced_json_keeps_provenance_and_roles(capsys, model_file):
    data = strict_json(stage(capsys, model_file, "traced", "--format", "json"))
    matmul = next(n for n in data["nodes"] if n["op"] == "matmul")
    assert (matmul["module_path"], matmul["module_type"]) == ("fc1", "Linear")
    assert matmul["source"].endswith(f"netdef.py:{FC1_LINE}")
    assert matmul["shape"] == [2, 16] and matmul["dtype"] == "float32"
    assert matmul["attrs"] == {"transpose_a": False, "transpose_b": True}
    x = data["nodes"][data["inputs"][0]]
    assert x["role"] == {"kind": "user", "key": 0} and x["attrs"] == {"name": "x"}
    weight = next(n for n in data["nodes"] if n["attrs"].get("name") == "fc1.weight")
    assert weight["role"] == {"kind": "param", "key": "fc1.weight"}
    assert data["outputs"] == [{"id": data["nodes"][-1]["id"], "name": "out"}]


def test_json_attrs_are_json_safe():
    b = GraphBuilder()
    x = b.input("x", "user", (2, 3), "float32")
    c = b.constant([[1.0, 2.0, 3.0]] * 2, "float32")
    t = b.add("permute", [x], {"dims": (1, 0)}, (3, 2), "float32")
    body = Body((("neg", ("in0",), (), "float32"), ("exp", ("s0",), (), "float32")))
    f = b.add("fused", [c], {"body": body}, (2, 3), "float32", "fc1+<root>", "Linear+Net")
    graph = b.finish([t, f], ["t", "f"], [(f, x)])
    data = to_json(graph)
    check_graph_schema(data)
    json.dumps(data, allow_nan=False)
    assert data["nodes"][c]["attrs"] == {"value": {"shape": [2, 3], "dtype": "float32"}}
    assert data["nodes"][t]["attrs"] == {"dims": [1, 0]}
    assert data["nodes"][f]["attrs"] == {"body": "exp(neg(in0))"}
    assert data["outputs"] == [{"id": t, "name": "t"}, {"id": f, "name": "f"}]
    assert data["updates"] == [{"value": f, "target": x}]
    assert json_value(Role("state", ("fc.weight", "momentum"))) == {"kind": "state", "key": ["fc.weight", "momentum"]}
    assert [json_value(v) for v in (float("inf"), float("-inf"), float("nan"), 0.5)] == ["inf", "-inf", "nan", 0.5]
    assert json_value(Literal.of([1, 2])) == {"shape": [2], "dtype": "int64"}
    assert recorded_module_paths(graph.nodes[f]) == ["fc1", ""]


def test_kernels_json_lists_the_kernel_functions_of_the_llvm_module(capsys, model_file):
    kernels = strict_json(stage(capsys, model_file, "kernels", "--format", "json"))
    assert isinstance(kernels, list) and kernels
    for kernel in kernels:
        assert set(kernel) == {"name", "template", "nodes", "module_paths", "writes", "reads"}
        assert kernel["nodes"] and kernel["name"].startswith(f"k{kernel['nodes'][-1]}_")
        assert set(kernel["writes"]) <= set(kernel["nodes"])
    paths = {p for kernel in kernels for p in kernel["module_paths"]}
    assert {"fc1", "fc2"} <= paths
    llvm = stage(capsys, model_file, "llvm")
    defined = set(re.findall(r'^define internal \S+ @"?(k\d+_\w+)"?\(', llvm, re.M))
    assert {k["name"] for k in kernels} == defined


def test_kernels_json_names_every_module_a_fused_kernel_came_from(capsys, tmp_path):
    path = tmp_path / "chain.py"
    path.write_text("import graphc.nn as nn\n\n\nclass Chain(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.act = nn.Tanh()\n\n"
                    "    def forward(self, x):\n        return self.act(x.exp()).sigmoid()\n")
    status, out, err = dump(capsys, f"{path}:Chain", "--input", "2x8", "--stage", "kernels", "--format", "json")
    assert status == 0, err
    (kernel,) = strict_json(out)
    assert kernel["name"].split("_")[1] == "fused"
    assert sorted(kernel["module_paths"]) == ["", "act"]


# ---- dot -------------------------------------------------------------------------------------------

def clusters(dot):
    """{cluster path: enclosing cluster path or None}, read from the nesting of the DOT text."""
    parents, stack = {}, []
    for line in dot.splitlines():
        opened = re.match(r'\s*subgraph "cluster_(.*)" \{$', line)
        if opened:
            parents[opened.group(1)] = stack[-1] if stack else None
            stack.append(opened.group(1))
        elif line.strip() == "}" and stack:
            stack.pop()
    assert not stack, "unbalanced braces"
    return parents


@pytest.mark.parametrize("name", ["traced", "optimized", "joint", "backward", "kernels"])
def test_dot_has_a_cluster_per_module(capsys, model_file, name):
    dot = stage(capsys, model_file, name, "--format", "dot")
    assert dot.startswith("digraph")
    assert dot.count("{") == dot.count("}")
    graph_stage = f"after:{KERNEL_PIPELINE[-1].__name__}" if name == "kernels" else name  # kernels' json: kernels
    nodes = strict_json(stage(capsys, model_file, graph_stage, "--format", "json"))["nodes"]
    paths = {n["module_path"] for n in nodes if "+" not in n["module_path"]} - {""}  # fused: in a common parent
    paths |= {n.rpartition(".")[0] for n in re.findall(r"input (\w+\.\w+) ", dot)}  # parameter owners
    assert set(clusters(dot)) >= paths
    for node_id, label in re.findall(r'\bn(\d+) \[label="([^"]*)"', dot):
        assert re.fullmatch(rf"%{node_id} \w+ (\S+ )?[fib]\d+\[[\d,]*\]", label), label


def test_dot_nests_clusters_by_module_path(capsys, tmp_path):
    path = tmp_path / "deep.py"
    path.write_text(NESTED)
    status, dot, err = dump(capsys, f"{path}:Deep", "--input", "2x8", "--stage", "traced", "--format", "dot")
    assert status == 0, err
    parents = clusters(dot)
    assert parents["layers"] is None and parents["head"] is None
    assert parents["layers.0"] == "layers" and parents["layers.1"] == "layers"
    assert parents["layers.0.fc"] == "layers.0" and parents["layers.1.act"] == "layers.1"
    assert 'label="layers (Sequential)"' in dot and 'label="0 (Block)"' in dot and 'label="fc (Linear)"' in dot
    weight = re.search(r'n(\d+) \[label="%\d+ input layers.1.fc.weight', dot)
    inside = dot[dot.index('subgraph "cluster_layers.1.fc"'):]
    assert weight and inside.index(weight.group(0)) < inside.index("}")


def test_dot_quotes_labels_and_marks_outputs_and_updates():
    b = GraphBuilder()
    x = b.input('we"ird\\name', "user", (2,), "float32")
    y = b.add("neg", [x], {}, (2,), "float32", "a.b", "Odd")
    dot = to_dot(b.finish([y], ["y"], [(y, x)]), 'title "quoted"')
    assert dot.startswith('digraph "title \\"quoted\\"" {')
    assert '%0 input we\\"ird\\\\name f32[2]' in dot
    assert f"n{y} [label=\"%{y} neg f32[2]\", peripheries=2];" in dot
    assert f"n{y} -> n{x} [style=dashed, label=update" in dot
    assert clusters(dot) == {"a": None, "a.b": "a"}


# ---- --out -----------------------------------------------------------------------------------------

def test_out_writes_the_stage_to_a_file_and_prints_its_path(capsys, model_file, tmp_path):
    printed = stage(capsys, model_file, "traced", "--format", "json")
    target = tmp_path / "traced.json"
    assert stage(capsys, model_file, "traced", "--format", "json", "--out", str(target)) == f"{target}\n"
    assert target.read_text() == printed


def fake_dot(folder):
    """A `dot` on PATH that checks how it is called and writes a stand-in SVG."""
    script = folder / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys\nsource = sys.stdin.read()\n"
                      "assert sys.argv[1:3] == ['-Tsvg', '-o'] and source.startswith('digraph'), sys.argv\n"
                      "open(sys.argv[3], 'w').write('<svg>' + str(source.count('cluster_')) + '</svg>')\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_svg_is_rendered_by_graphviz_dot(capsys, model_file, tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    fake_dot(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "graph.svg"
    stage(capsys, model_file, "optimized", "--format", "dot", "--out", str(target))
    assert target.read_text() == "<svg>3</svg>"  # fc1, act, fc2


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_with_the_real_graphviz(capsys, model_file, tmp_path):
    target = tmp_path / "graph.svg"
    stage(capsys, model_file, "optimized", "--format", "dot", "--out", str(target))
    assert "<svg" in target.read_text() and "fc1" in target.read_text()


def test_svg_without_graphviz_says_so_in_one_line(capsys, model_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    status, out, err = dump(capsys, f"{model_file}:make", "--input", "2x8", "--format", "dot",
                            "--out", str(tmp_path / "g.svg"))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Graphviz" in err and "--out FILE.dot" in err
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("extra, fragment", [
    (("--stage", "tree", "--format", "json"), "tree is text only"),
    (("--stage", "plan", "--format", "dot"), "plan is text only"),
    (("--stage", "passes", "--format", "json"), "passes is text only"),
    (("--stage", "llvm", "--format", "json"), "llvm is text only"),
    (("--format", "yaml"), "yaml"),
    (("--stage", "all"), "--out DIR"),
    (("--out", "g.svg"), "--format dot"),
    (("--out", "/no/such/folder/g.txt"), "cannot write /no/such/folder/g.txt"),
])
def test_format_and_out_mistakes_are_one_line(capsys, model_file, extra, fragment):
    status, out, err = dump(capsys, f"{model_file}:make", "--input", "2x8", *extra)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("graphc: error:") and fragment in err, err


# ---- --stage all -----------------------------------------------------------------------------------

def expected_files():
    names = ["tree.txt", "traced.txt", *(f"after-{p.__name__}.txt" for p in PIPELINE), "optimized.txt",
             "prepared.txt", "joint.txt", "backward.txt", *(f"after-{p.__name__}.txt" for p in KERNEL_PIPELINE + PROGRAM_PASSES),
             "kernels.txt",
             "plan.txt", "llvm.ll", "llvm-opt.ll", "asm.s"]
    return [f"{k:02d}-{name}" for k, name in enumerate(names)]


def test_all_writes_every_stage_numbered_in_pipeline_order(capsys, model_file, tmp_path):
    folder = tmp_path / "stages"
    printed = stage(capsys, model_file, "all", "--out", str(folder)).splitlines()
    assert printed == [str(folder / name) for name in expected_files()]
    assert sorted(os.listdir(folder)) == expected_files()
    for name in expected_files():
        assert (folder / name).stat().st_size > 0, name
    read = {name.split("-", 1)[1].rsplit(".", 1)[0]: (folder / name).read_text() for name in expected_files()}
    assert read["traced"] == stage(capsys, model_file, "traced")
    assert read["backward"] == stage(capsys, model_file, "backward")
    assert read["tree"] == stage(capsys, model_file, "tree")
    assert read["plan"].splitlines()[-1].startswith("planned peak:")
    assert read["llvm"].startswith("; ModuleID") and "forward:" in read["asm"]


def test_all_writes_graph_stages_as_json_when_asked(capsys, model_file, tmp_path):
    folder = tmp_path / "stages"
    stage(capsys, model_file, "all", "--out", str(folder), "--format", "json")
    names = sorted(os.listdir(folder))
    graphs = [n for n in names if n.endswith(".json")]
    assert len(graphs) == len(PIPELINE) + len(KERNEL_PIPELINE) + len(PROGRAM_PASSES) + 5  # traced optimized joint backward kernels
    for name in graphs:
        data = strict_json((folder / name).read_text())
        if name.endswith(("-kernels.json", *(f"-after-{p.__name__}.json" for p in PROGRAM_PASSES))):
            assert all(set(k) == {"name", "template", "nodes", "module_paths", "writes", "reads"} for k in data)
        else:
            check_graph_schema(data)
    assert {n.split("-", 1)[1] for n in names if not n.endswith(".json")} == {
        "tree.txt", "prepared.txt", "plan.txt", "llvm.ll", "llvm-opt.ll", "asm.s"}


# ---- passes and plan -------------------------------------------------------------------------------

def sections(out):
    """[(header, graph text)] of `--stage passes`."""
    parts = re.split(r"^(== .* ==)$", out.rstrip("\n"), flags=re.M)[1:]
    return list(zip(parts[0::2], (p.strip("\n") for p in parts[1::2])))


def test_passes_marks_a_pass_that_changed_nothing(capsys, model_file):
    status, out, err = dump(capsys, f"{model_file}:Tied", "--input", "2x8", "--stage", "passes")
    assert status == 0, err
    shown = sections(out)
    headers = {h.split()[2]: h for h, _ in shown[1:]}
    assert headers["fold_constants"].endswith("(unchanged) ==")  # a graph without constants
    assert "(unchanged)" not in headers["fold_transpose_into_matmul"]  # x @ w.t() -> matmul transpose_b
    for (_, before), (header, after) in zip(shown, shown[1:]):
        assert ("(unchanged)" in header) == (before == after), header


def test_plan_ends_with_the_planned_peak(capsys, model_file):
    last = stage(capsys, model_file, "plan").rstrip("\n").splitlines()[-1]
    match = re.fullmatch(r"planned peak: (\d+) bytes \(unplanned (\d+) bytes\)", last)
    assert match, last
    assert 0 < int(match.group(1)) <= int(match.group(2))
