"""No function in our packages reaches cyclomatic grade D (radon): split it into named steps first.

The same measure as `radon cc -n D <packages>`, plus closures and inner classes, which radon scores
apart from the function around them (a nested function must not be a place to hide branches).
"""

from __future__ import annotations

from pathlib import Path
from textwrap import indent

from radon.complexity import add_inner_blocks, cc_rank, cc_visit

from tests.repo.test_layers import CORE, ORCHESTRATION, ROOT, STAGES

# Every package but bench/, whose scripts measure rather than ship.
PACKAGES = (CORE, *sorted(STAGES), ORCHESTRATION, "tools")
# Grades run A (1-5) to F (41+); C is 11-20 branches, D starts at 21.
WORST_ALLOWED = "C"


def too_complex(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Name every function, method or class graded worse than WORST_ALLOWED, with its score."""
    found = []
    for package in packages:
        for source in sorted((root / package).rglob("*.py")):
            for block in add_inner_blocks(cc_visit(source.read_text())):
                grade = cc_rank(block.complexity)
                if grade > WORST_ALLOWED:
                    found.append(
                        f"{source.relative_to(root)}:{block.lineno} {block.fullname} "
                        f"grade {grade} ({block.complexity})"
                    )
    return sorted(found)


def test_no_function_in_the_packages_is_grade_d_or_worse() -> None:
    found = too_complex()
    assert not found, "split into smaller named functions:\n" + "\n".join(found)


def test_a_function_or_closure_with_too_many_branches_is_named(tmp_path: Path) -> None:
    # 20 ifs and the function itself score 21, the first score of grade D.
    ifs = "".join(f"if x == {i}:\n    return {i}\n" for i in range(20)) + "return -1\n"
    source = (
        f"def tangled(x):\n{indent(ifs, '    ')}\n\n"
        f"def outer(x):\n    def inner(x):\n{indent(ifs, ' ' * 8)}\n    return inner(x)\n\n\n"
        "def fine(x):\n    return 1 if x else 0\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(source)
    assert too_complex(tmp_path, ("pkg",)) == [
        "pkg/mod.py:1 tangled grade D (21)",
        "pkg/mod.py:46 outer.inner grade D (21)",
    ]
