"""The built book works without a network, and its pages load without errors.

- MathJax: Sphinx loads it from a CDN by default, so a reader offline (or the
  browser test, which has no network) would see raw TeX and a console error.
  The book serves MathJax 3 itself: the combined TeX/MathML component and its
  fonts, from the ``django-static-mathjax`` package (plain MathJax files; it
  needs no Django), are copied into ``_static/mathjax``.
- Thebe: Jupyter Book adds sphinx-thebe's script twice (an uncaught
  "THEBE_JS_URL has already been declared" on every page) and it would fetch
  Thebe from a CDN; the book has no live-code buttons, so its scripts are dropped.
"""

import shutil
from pathlib import Path

import mathjax

MATHJAX = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
COMPONENT = "tex-mml-chtml.js"
FONTS = Path("output") / "chtml" / "fonts" / "woff-v2"
TARGET = "mathjax"


def use_local_mathjax(app, config):
    config.mathjax_path = f"{TARGET}/{COMPONENT}"


def drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files", [])
    scripts[:] = [
        script for script in scripts if "thebe" not in str(getattr(script, "filename", "") or "") and "THEBE_JS_URL" not in str(script.attributes.get("body", ""))
    ]


def copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / TARGET
        (target / FONTS).mkdir(parents=True, exist_ok=True)
        shutil.copy2(MATHJAX / COMPONENT, target / COMPONENT)
        shutil.copytree(MATHJAX / FONTS, target / FONTS, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", use_local_mathjax)
    app.connect("html-page-context", drop_thebe)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
