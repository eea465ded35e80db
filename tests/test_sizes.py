"""The sizes agreed for minibert/ (issue 18, "Finish the layout"): a file stays a text one can read, a class
a unit one can hold in mind, and a function, a loop body above all, fits on about one screen.

The limits: minibert/tokenizer.py at most 600 lines, the BertTokenizer class at most 250, and every
function or method in minibert/ at most 90 lines (decorators and docstring included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minibert"
MAX_FUNCTION_LINES = 90


def lines_of(path: Path) -> int:
    return path.read_text(encoding="utf-8").count("\n")


def span(node: ast.AST) -> int:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return node.end_lineno - first + 1


def functions_longer_than(limit: int, source: str, name: str) -> list[str]:
    return [f"{name}:{node.lineno} {node.name} ({span(node)} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and span(node) > limit]


def test_tokenizer_py_is_at_most_600_lines():
    assert lines_of(PACKAGE / "tokenizer.py") <= 600


def test_bert_tokenizer_class_is_at_most_250_lines():
    tree = ast.parse((PACKAGE / "tokenizer.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BertTokenizer"]
    assert span(cls) <= 250, f"BertTokenizer is {span(cls)} lines"


def test_every_function_in_minibert_is_at_most_90_lines():
    long = [f for path in sorted(PACKAGE.glob("*.py"))
            for f in functions_longer_than(MAX_FUNCTION_LINES, path.read_text(encoding="utf-8"), path.name)]
    assert not long, "functions longer than 90 lines: " + ", ".join(long)


def test_the_size_check_sees_a_long_function_and_a_decorator():
    body = "".join(f"    x{i} = {i}\n" for i in range(89))
    assert functions_longer_than(90, "def f():\n" + body, "t.py") == []  # 90 lines: allowed
    assert functions_longer_than(90, "@staticmethod\ndef f():\n" + body, "t.py") == ["t.py:2 f (91 lines)"]
    nested = "class C:\n    def g(self):\n" + "".join(f"        y{i} = {i}\n" for i in range(95))
    assert functions_longer_than(90, nested, "t.py") == ["t.py:2 g (96 lines)"]
