"""A static look at a student's own code, for the instructor: what it names that an
honest solution never needs.

It changes no grade: the grade comes from the re-run (:mod:`poolkit.grader.rerun`),
where the frameworks' pooling is unavailable. The scan adds a flag,
``suspicious:<names>``, so that the instructor can read the notebooks that reach
for a framework's pooling or for the machinery an attack on the grader uses.

Examples
--------
>>> sorted(names_of_note("import ctypes\\nfrom torch.nn import functional as F\\ny = F.max_pool2d(x, 2)"))
['ctypes', 'max_pool2d']
>>> names_of_note("def pool2d(X):\\n    return pool2d(X)")
set()
"""

import ast
import re

#: A pooling operator of a framework or of poolkit: max_pool2d, AvgPool2D, Pooling, adaptive_avg_pool2d, ...
POOLING_NAME = re.compile(r"pool", re.IGNORECASE)
#: Names that reach below the exercise: the interpreter's frames and tracing, C calls,
#: the frameworks' internals, processes and threads, the grader itself.
ESCAPES = frozenset(
    {
        "ctypes", "cffi", "gc", "settrace", "setprofile", "_getframe", "f_back", "f_locals", "f_globals", "__closure__", "__code__",
        "_LIB", "_imperative_invoke", "_C", "library", "_dispatch_library", "CachedOp", "fork", "setsid", "setpgid", "subprocess",
        "threading", "_thread", "multiprocessing", "poolkit", "dlopen", "CDLL", "_decomp", "decompositions", "_refs", "_prims",
        "_inductor", "compile_fx", "cpp_extension", "_real",
    }
)  # fmt: skip


def names_of_note(source: str) -> set[str]:
    """The pooling operators that ``source`` reaches as an attribute or an import, and
    the escape hatches it names anywhere.

    Source that does not parse (IPython magics, a syntax error) is read by word.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {word for word in re.findall(r"[A-Za-z_]\w*", source) if word in ESCAPES}
    named: set[str] = set()  # attributes and imports: where a framework's pooling is reached
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            named.add(node.attr)
        elif isinstance(node, ast.Import):
            named |= {part for alias in node.names for part in alias.name.split(".")}
        elif isinstance(node, ast.ImportFrom):
            named |= set((node.module or "").split(".")) | {alias.name for alias in node.names}
    # Bare names only count as escapes: the student's own names (pool2d, pool_size) are theirs.
    bare = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return {name for name in named if name in ESCAPES or POOLING_NAME.search(name)} | (bare & ESCAPES)
