"""The built book works without a network, and its pages load without errors.

- MathJax: Sphinx loads it from a CDN by default, so a reader offline (or the
  browser test, which has no network) would see raw TeX and a console error.
  The book serves MathJax 3 itself: the combined TeX/MathML component and its
  fonts, from the ``django-static-mathjax`` package (plain MathJax files; it
  needs no Django), are copied into ``_static/mathjax``.
- Thebe: Jupyter Book adds sphinx-thebe's script twice (an uncaught
  "THEBE_JS_URL has already been declared" on every page) and it would fetch
  Thebe from a CDN; the book has no live-code buttons, so its scripts are dropped.
- The root ``index.html``: sphinx-external-toc writes a bare redirect with no
  icon link, so a browser that lingers on it asks for ``/favicon.ico`` (a 404
  in the console). The book writes its own, with the icon and a plain link for
  a browser that does not follow the refresh; the toc's fallback then skips it.
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


ROOT_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="_static/{icon}">
<meta http-equiv="Refresh" content="0; url={first_page}">
</head>
<body><p><a href="{first_page}">{title}</a></p></body>
</html>
"""


def write_root_page(app, exception):
    if exception is None and app.builder.format == "html":
        index = Path(app.outdir) / "index.html"
        if app.config.root_doc != "index":
            first_page = app.builder.get_target_uri(app.config.root_doc)
            icon = Path(app.config.html_favicon or "favicon.svg").name
            index.write_text(ROOT_PAGE.format(title=app.config.html_title or app.config.project, icon=icon, first_page=first_page), encoding="utf-8")


def setup(app):
    app.connect("config-inited", use_local_mathjax)
    app.connect("html-page-context", drop_thebe)
    app.connect("build-finished", copy_mathjax)
    # Before sphinx-external-toc's own fallback (default priority 500), which only writes a missing index.html.
    app.connect("build-finished", write_root_page, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
