"""`graphc dump`: every stage prints what it should; every user mistake is one `graphc: error:` line.

Most cases call `graphc.cli.main` in-process; a few run `python -m graphc` in a subprocess to prove
the command works end to end and that no traceback reaches the terminal.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from graphc.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL = textwrap.dedent("""\
    import graphc.nn as nn
    import graphc.nn.functional as F


    class Net(nn.Module):
        def __init__(self, hidden=16):
            super().__init__()
            self.fc1 = nn.Linear(8, hidden)
            self.act = nn.ReLU()
            self.fc2 = nn.Linear(hidden, 4)

        def forward(self, x):
            h = self.act(self.fc1(x))
            return self.fc2(h)


    def make(hidden=16):
        return Net(hidden)


    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return x @ self.fc.weight.t()


    class Classify(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)

        def forward(self, x, labels):
            return F.cross_entropy(self.fc(x), labels)


    def broken(hidden=16):
        raise RuntimeError("factory exploded")


    def not_a_module():
        return 42
""")
FC1_LINE = MODEL.splitlines().index("        h = self.act(self.fc1(x))") + 1


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "netdef.py"
    path.write_text(MODEL)
    return str(path)


def dump(capsys, *argv):
    """Run `graphc dump ARGV` in-process: (exit status, stdout, stderr)."""
    status = main(["dump", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def dump_subprocess(*argv):
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-m", "graphc", "dump", *argv], capture_output=True, text=True,
                          env=env, timeout=300)
    return done.returncode, done.stdout, done.stderr


def stage(capsys, model_file, name, *extra):
    status, out, err = dump(capsys, f"{model_file}:make", "--input", "2x8", "--stage", name, *extra)
    assert status == 0, err
    assert err == ""
    return out


# ---- each stage shows what it should ----------------------------------------------------------------

def test_tree_shows_qualified_names_and_types(capsys, model_file):
    out = stage(capsys, model_file, "tree")
    assert "Net" in out
    assert "fc1: Linear" in out and "act: ReLU" in out and "fc2: Linear" in out
    assert "weight: f32[16,8]" in out and "bias: f32[16]" in out
    assert "weight: f32[4,16]" in out


def test_tree_needs_no_input(capsys, model_file):
    status, out, err = dump(capsys, f"{model_file}:make", "--stage", "tree")
    assert status == 0, err
    assert "fc1: Linear" in out


def test_traced_prints_one_line_per_node_with_provenance(capsys, model_file):
    out = stage(capsys, model_file, "traced")
    lines = out.splitlines()
    matmuls = [line for line in lines if "= matmul" in line]
    assert len(matmuls) == 2
    assert "# fc1 (Linear)" in matmuls[0] and "# fc2 (Linear)" in matmuls[1]
    assert "f32[2,16] = matmul" in matmuls[0]
    relu = [line for line in lines if "= relu" in line]
    assert len(relu) == 1 and "act (ReLU)" in relu[0]
    assert f"netdef.py:{FC1_LINE}" in matmuls[0]
    assert "input x" in out and "input fc1.weight" in out


def test_passes_prints_the_graph_after_each_pass_in_order(capsys, model_file):
    out = stage(capsys, model_file, "passes")
    headers = [line for line in out.splitlines() if line.startswith("== ")]
    assert headers[0] == "== traced =="
    names = [h.split()[2] for h in headers[1:]]
    assert names[0] == "fold_constants" and names[-9:] == ["dead_code", "fuse_elementwise", "fuse_matmul_epilogue",
                                                             "fuse_convolution", "fuse_weight_gradient",
                                                             "fuse_input_gradient", "fuse_reductions", "group_kernels",
                                                             "schedule_kernels"]
    assert out.index("after fold_constants") < out.index("after dead_code") < out.index("after fuse_elementwise")
    assert out.count("= matmul") == 2 * len(headers)


def test_optimized_folds_a_transpose_into_the_matmul(capsys, model_file):
    status, traced, err = dump(capsys, f"{model_file}:Tied", "--input", "2x8", "--stage", "traced")
    assert status == 0, err
    assert "= permute" in traced and "transpose_b=False" in traced
    status, optimized, err = dump(capsys, f"{model_file}:Tied", "--input", "2x8", "--stage", "optimized")
    assert status == 0, err
    assert "transpose_b=True" in optimized and "permute" not in optimized
    assert "transpose_b=True" in stage(capsys, model_file, "optimized")


def test_backward_outputs_parameter_gradients_from_saved_values(capsys, model_file):
    out = stage(capsys, model_file, "backward")
    returned = out.strip().splitlines()[-1]
    assert returned.lstrip().startswith("return")
    for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
        assert f"grad_{name}" in returned
    assert "(saved %" in out
    assert "input grad_out  (seed 0)" in out


def test_llvm_has_the_entry_point_and_named_kernels(capsys, model_file):
    out = stage(capsys, model_file, "llvm")
    defines = [line for line in out.splitlines() if line.startswith("define")]
    assert any('@"forward"' in line or "@forward" in line for line in defines)
    kernels = [line.split("@", 1)[1].split("(", 1)[0].strip('"') for line in defines]
    assert any(k.startswith("k") and "fc1" in k for k in kernels), kernels


def test_llvm_opt_is_vectorised(capsys, model_file):
    out = stage(capsys, model_file, "llvm-opt")
    assert "define" in out and "forward" in out
    assert "<8 x float>" in out or "<4 x float>" in out


def test_asm_has_vector_instructions_and_the_entry_symbol(capsys, model_file):
    out = stage(capsys, model_file, "asm")
    assert "forward:" in out
    assert any(op in out for op in ("vfmadd", "vmovups", "vmulps", "mulps", "movups"))


@pytest.mark.parametrize("which", ["llvm-opt", "asm"])
def test_optimised_ir_and_assembly_keep_every_kernel_name(capsys, model_file, which):
    llvm = stage(capsys, model_file, "llvm")
    kernels = re.findall(r'^define internal \S+ @"?(k\d+_\w+)"?\(', llvm, re.M)
    assert kernels
    out = stage(capsys, model_file, which)
    for name in kernels:
        assert re.search(rf'^(define internal .*@"?{name}"?\(|"?{name}"?:)', out, re.M), name


def test_default_stage_is_traced(capsys, model_file):
    status, out, err = dump(capsys, f"{model_file}:make", "--input", "2x8")
    assert status == 0, err
    assert "= matmul" in out and "# fc1 (Linear)" in out


# ---- options ---------------------------------------------------------------------------------------

def test_arg_is_passed_to_the_factory(capsys, model_file):
    out = stage(capsys, model_file, "tree", "--arg", "hidden=32")
    assert "weight: f32[32,8]" in out and "weight: f32[4,32]" in out
    out = stage(capsys, model_file, "traced", "--arg", "hidden=32")
    assert "f32[2,32] = matmul" in out


def test_eval_puts_the_model_in_eval_mode(capsys, model_file):
    assert "(eval)" not in stage(capsys, model_file, "tree")
    out = stage(capsys, model_file, "tree", "--eval")
    assert out.splitlines()[0].endswith("(eval)")
    assert "= matmul" in stage(capsys, model_file, "traced", "--eval")


def test_int64_input_for_class_indices(capsys, model_file):
    status, out, err = dump(capsys, f"{model_file}:Classify", "--input", "2x8", "--input", "2:int64",
                            "--stage", "traced")
    assert status == 0, err
    assert "i64[2] = input labels" in out
    status, out, err = dump(capsys, f"{model_file}:Classify", "--input", "2x8", "--input", "2:int64",
                            "--stage", "backward")
    assert status == 0, err
    assert "grad_fc.weight" in out and "grad_fc.bias" in out


def test_python_dash_m_graphc_runs_end_to_end(model_file):
    status, out, err = dump_subprocess(f"{model_file}:make", "--input", "2x8", "--stage", "traced",
                                       "--arg", "hidden=32")
    assert status == 0, err
    assert "f32[2,32] = matmul" in out and "# fc1 (Linear)" in out
    assert "Traceback" not in err


# ---- user mistakes: exactly one error line, no traceback --------------------------------------------

def assert_one_error_line(status, err, *fragments):
    assert status != 0
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphc: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("target, input_text, extra, fragments", [
    ("{dir}/nope.py:make", "2x8", (), ("no such file",)),
    ("{file}:missing", "2x8", (), ("'missing'",)),
    ("{file}", "2x8", (), ("FILE.py:NAME",)),
    ("{file}:make", "8xfoo", (), ("8xfoo",)),
    ("{file}:make", "0x3", (), ("0x3",)),
    ("{file}:make", "2x8:int32", (), ("int32",)),
    ("{file}:make", "2x8", ("--stage", "bogus"), ("bogus",)),
    ("{file}:make", "2x8", ("--arg", "hidden"), ("hidden",)),
    ("{file}:make", "2x8", ("--arg", "width=3"), ("width",)),
    ("{file}:broken", "2x8", (), ("broken", "factory exploded")),
    ("{file}:not_a_module", "2x8", (), ("not_a_module", "Module")),
    ("{file}:make", "2x5", (), ("fc1", "Linear", "2x5")),
    ("{file}:make", "2x5", ("--stage", "asm"), ("fc1",)),
])
def test_bad_arguments_exit_nonzero_with_one_error_line(capsys, model_file, target, input_text, extra, fragments):
    target = target.format(file=model_file, dir=os.path.dirname(model_file))
    status, out, err = dump(capsys, target, "--input", input_text, *extra)
    assert_one_error_line(status, err, *fragments)
    assert out == ""


def test_missing_input_for_a_graph_stage(capsys, model_file):
    status, out, err = dump(capsys, f"{model_file}:make", "--stage", "traced")
    assert_one_error_line(status, err, "--input")


def test_file_that_fails_to_import(capsys, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("import graphc\nraise ImportError('no such thing')\n")
    status, out, err = dump(capsys, f"{path}:Net", "--input", "2x8")
    assert_one_error_line(status, err, "no such thing")


@pytest.mark.parametrize("target, input_text, fragments", [
    ("{file}:broken", "2x8", ("factory exploded",)),
    ("{file}:make", "2x5", ("fc1",)),
    ("{file}", "2x8", ("FILE.py:NAME",)),
])
def test_no_traceback_reaches_the_terminal(model_file, target, input_text, fragments):
    status, out, err = dump_subprocess(target.format(file=model_file), "--input", input_text)
    assert_one_error_line(status, err, *fragments)
    assert out == ""


@pytest.mark.parametrize("argv", [["dump"], ["dump", "x.py:Net", "--frobnicate"], ["compile"], []])
def test_argument_parser_errors_are_one_line_too(capsys, argv):
    status = main(argv)
    out, err = capsys.readouterr()
    assert_one_error_line(status, err)


def test_a_closed_pipe_is_not_an_error(model_file):
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(f"{sys.executable} -m graphc dump {model_file}:make --input 2x8 --stage llvm | head -1",
                          shell=True, capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.startswith("; ModuleID")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_dump_traces_on_shapes_alone_so_a_huge_input_allocates_nothing(capsys, tmp_path):
    path = tmp_path / "wide.py"
    path.write_text("import graphc.nn as nn\n\n\nclass Wide(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.fc = nn.Linear(100000, 4)\n\n"
                    "    def forward(self, x):\n        return self.fc(x).relu()\n")
    for stage_name in ("traced", "optimized"):  # 100000 x 100000 float32 would be 40 GB
        assert main(["dump", f"{path}:Wide", "--input", "100000x100000", "--stage", stage_name]) == 0
        assert "f32[100000,100000]" in capsys.readouterr().out


def test_a_model_file_that_calls_sys_exit_is_reported_in_one_line(capsys, tmp_path):
    path = tmp_path / "script.py"
    path.write_text("import sys\nsys.exit(3)\n")
    assert main(["dump", f"{path}:Net", "--input", "2x8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "called sys.exit(3)" in err


@pytest.mark.parametrize("optim, state", [("SGD", None), ("Adam", "exp_avg_sq")])
def test_joint_with_a_loss_and_an_optimizer_is_the_whole_train_step(capsys, model_file, optim, state):
    status, out, err = dump(capsys, f"{model_file}:make", "--input", "2x8", "--input", "2:int64", "--stage", "joint",
                            "--loss", "CrossEntropyLoss", "--optim", optim)
    assert status == 0, err
    assert out.count("  update %") == 4 + (8 if state else 0)  # every parameter, and Adam's two moments
    assert f"# fc1.weight ({optim})" in out and "one_hot" in out and "check_index" in out
    if state:
        assert "input fc1.weight:exp_avg_sq  (state fc1.weight, exp_avg_sq)" in out


@pytest.mark.parametrize("argv, message", [
    (["--loss", "CrossEntropyLoss"], "--loss and --optim go together"),
    (["--loss", "Nope", "--optim", "SGD"], "unknown loss 'Nope'"),
    (["--loss", "CrossEntropyLoss", "--optim", "Nope"], "unknown optimizer 'Nope'"),
])
def test_train_step_options_give_one_line_errors(capsys, model_file, argv, message):
    status, out, err = dump(capsys, f"{model_file}:make", "--input", "2x8", "--input", "2:int64", "--stage", "joint",
                            *argv)
    assert status == 2 and message in err and err.count("\n") == 1
