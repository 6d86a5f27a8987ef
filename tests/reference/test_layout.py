"""Code-layout rules of qwen_sft/ and tools/ (issue 15): imports at module top unless a comment says why, and one
home for the small shared tables."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "qwen_sft").glob("*.py"), *(REPO / "tools").glob("*.py")])


def _function_level_imports(path: Path):
    """(line, statement, enclosing function's docstring) of every import inside a function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node.lineno, ast.unparse(node), ast.get_docstring(func) or ""


def _has_reason(lines: list[str], lineno: int, docstring: str) -> bool:
    """A comment on the import's line or in the lines right above it (across a block of imports), or a function
    docstring that says why it imports."""
    if "#" in lines[lineno - 1] or "import" in docstring:
        return True
    for above in lines[max(0, lineno - 6):lineno - 1][::-1]:
        stripped = above.strip()
        if "#" in stripped:
            return True
        if not stripped.startswith(("from ", "import ")):
            return False
    return False


def test_imports_inside_functions_state_their_reason():
    unexplained = []
    for path in SOURCES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for lineno, stmt, docstring in _function_level_imports(path):
            if not _has_reason(lines, lineno, docstring):
                unexplained.append(f"{path.relative_to(REPO)}:{lineno}: {stmt}")
    assert not unexplained, "imports inside functions without a comment saying why:\n" + "\n".join(unexplained)


def test_dtype_name_table_has_one_home():
    """Only qwen_sft/dtypes.py spells out the name → torch dtype table."""
    offenders = [str(p.relative_to(REPO)) for p in SOURCES
                 if p.name != "dtypes.py" and '"bf16": torch.bfloat16' in p.read_text(encoding="utf-8")]
    assert not offenders


def test_facade_detection_has_one_home_in_qwen_sft():
    """qwen_sft asks the shim (`shim.is_active()`), in one place, whether torch is the facade."""
    users = [str(p.relative_to(REPO)) for p in SOURCES if "+mindspore" in p.read_text(encoding="utf-8")
             or "shim.is_active()" in p.read_text(encoding="utf-8")]
    assert users == ["qwen_sft/run_records.py"]
