// Framework tabs. Each run of adjacent code cells tagged "mxnet" or "pytorch"
// (myst-nb gives them the classes tag_mxnet / tag_pytorch) becomes one tab set.
// Choosing a framework in any set switches every set on the page, and the
// choice is remembered for the next page. Without JavaScript, both show.
(function () {
  "use strict";
  var FRAMEWORKS = [["mxnet", "MXNet"], ["pytorch", "PyTorch"]];
  var KEY = "pooling-course-framework";

  function frameworkOf(element) {
    for (var i = 0; i < FRAMEWORKS.length; i++) {
      if (element.classList && element.classList.contains("tag_" + FRAMEWORKS[i][0])) return FRAMEWORKS[i][0];
    }
    return null;
  }

  function remembered() {
    try {
      var tag = window.localStorage.getItem(KEY);
      return FRAMEWORKS.some(function (pair) { return pair[0] === tag; }) ? tag : null;
    } catch (error) {
      return null; // storage blocked: the default applies
    }
  }

  function choose(tag, remember) {
    document.querySelectorAll(".framework-cell").forEach(function (cell) {
      cell.hidden = cell.dataset.framework !== tag;
    });
    document.querySelectorAll(".framework-tabs button").forEach(function (button) {
      var selected = button.dataset.framework === tag;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
    });
    if (remember) {
      try { window.localStorage.setItem(KEY, tag); } catch (error) { /* not remembered, still switched */ }
    }
  }

  function tabBar() {
    var bar = document.createElement("div");
    bar.className = "framework-tabs";
    bar.setAttribute("role", "tablist");
    bar.setAttribute("aria-label", "Framework");
    FRAMEWORKS.forEach(function (pair) {
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("role", "tab");
      button.dataset.framework = pair[0];
      button.textContent = pair[1];
      button.addEventListener("click", function () { choose(pair[0], true); });
      bar.appendChild(button);
    });
    return bar;
  }

  function build() {
    var cells = Array.prototype.filter.call(document.querySelectorAll("div.cell"), frameworkOf);
    if (!cells.length) return;
    cells.forEach(function (cell, i) {
      cell.classList.add("framework-cell");
      cell.dataset.framework = frameworkOf(cell);
      var previous = cell.previousElementSibling;
      var startsRun = i === 0 || previous !== cells[i - 1];
      if (startsRun) cell.parentNode.insertBefore(tabBar(), cell);
    });
    choose(remembered() || FRAMEWORKS[0][0], false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
