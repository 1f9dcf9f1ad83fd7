"""The README's support table is the one generated from the op table and graphc.nn."""
from pathlib import Path

from graphc import support
from graphc.lower.emitters import EMITTERS
from graphc.ops import OPS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_is_up_to_date():
    text = README.read_text()
    assert support.replace_section(text) == text, "run: python -m graphc.support --write README.md"


def test_table_lists_every_op_and_module():
    table = support.table()
    assert all(f"| `{name}` |" in table for name in OPS)
    assert "`Linear`" in table and "`CrossEntropyLoss`" in table and "`SGD`" in table


def test_main_prints_the_section(capsys):
    assert support.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith(support.BEGIN) and out.rstrip().endswith(support.END)
