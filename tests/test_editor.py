"""What an editor shows of poolkit: jedi (the completion of JupyterLab and VS
Code) reads the source statically, so it sees the public functions only if
they are plain ``def``s. (mypy's view is in ``tests/test_package.py``.)"""

import jedi


def test_an_editor_completes_and_documents_the_public_functions():
    """Completion, the signature while typing a call, and the docstring on hover."""
    completions = {c.name for c in jedi.Script("import poolkit\npoolkit.max_po").complete(2, 14)}
    assert {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_backward"} <= completions
    (signature,) = jedi.Script("import poolkit\npoolkit.avg_pool2d(").get_signatures(2, 19)
    assert [p.name for p in signature.params][:3] == ["x", "kernel_size", "stride"]
    (definition,) = jedi.Script("import poolkit\npoolkit.avg_pool2d").infer(2, 12)
    assert "count_include_pad" in definition.docstring() and definition.module_name == "poolkit.functional"
