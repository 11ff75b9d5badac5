// Framework tabs. Each run of adjacent code cells tagged "mxnet" or "pytorch"
// (myst-nb gives them the classes tag_mxnet / tag_pytorch) becomes one tab set:
// a tab list (WAI-ARIA tabs pattern) and one tab panel per framework, holding
// that framework's cells of the run. Choosing a framework in any set switches
// every set on the page, and the choice is remembered for the next page.
// Keyboard: Tab reaches the selected tab only (roving tabindex); Left/Right
// move to the previous/next tab and Home/End to the first/last, selecting it.
// Without JavaScript, both frameworks' cells show.
(function () {
  "use strict";
  // PyTorch first and the default, as in the exercise notebooks (FRAMEWORK in their first cell).
  var FRAMEWORKS = [["pytorch", "PyTorch"], ["mxnet", "MXNet"]];
  var DEFAULT = "pytorch";
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
    document.querySelectorAll(".framework-panel").forEach(function (panel) {
      panel.hidden = panel.dataset.framework !== tag;
    });
    document.querySelectorAll(".framework-tabs [role=tab]").forEach(function (tab) {
      var selected = tab.dataset.framework === tag;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    });
    if (remember) {
      try { window.localStorage.setItem(KEY, tag); } catch (error) { /* not remembered, still switched */ }
    }
  }

  // The tab that a key moves to from tab number `index` of `count`, or -1 for other keys.
  function target(key, index, count) {
    if (key === "ArrowRight") return (index + 1) % count;
    if (key === "ArrowLeft") return (index - 1 + count) % count;
    if (key === "Home") return 0;
    if (key === "End") return count - 1;
    return -1;
  }

  function onKey(event) {
    var tabs = Array.prototype.slice.call(event.currentTarget.querySelectorAll("[role=tab]"));
    var next = target(event.key, tabs.indexOf(event.target), tabs.length);
    if (next < 0 || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault(); // Home/End would otherwise scroll the page
    choose(tabs[next].dataset.framework, true);
    tabs[next].focus();
  }

  // One tab set: a tab list before the run's first cell, and a panel per framework holding its cells.
  function tabSet(run, number) {
    var bar = document.createElement("div");
    bar.className = "framework-tabs";
    bar.setAttribute("role", "tablist");
    bar.setAttribute("aria-label", "Framework");
    bar.addEventListener("keydown", onKey);
    run[0].parentNode.insertBefore(bar, run[0]);
    var after = bar;
    FRAMEWORKS.forEach(function (pair) {
      var cells = run.filter(function (cell) { return frameworkOf(cell) === pair[0]; });
      if (!cells.length) return;
      var id = "framework-" + number + "-" + pair[0];
      var tab = document.createElement("button");
      tab.type = "button";
      tab.id = id + "-tab";
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-controls", id);
      tab.dataset.framework = pair[0];
      tab.textContent = pair[1];
      tab.addEventListener("click", function () { choose(pair[0], true); });
      bar.appendChild(tab);

      var panel = document.createElement("div");
      panel.id = id;
      panel.className = "framework-panel";
      panel.dataset.framework = pair[0];
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tab.id);
      panel.tabIndex = 0; // reachable even where its cells hold nothing focusable
      cells.forEach(function (cell) {
        cell.classList.add("framework-cell");
        panel.appendChild(cell);
      });
      after.parentNode.insertBefore(panel, after.nextSibling);
      after = panel;
    });
  }

  function build() {
    var cells = Array.prototype.filter.call(document.querySelectorAll("div.cell"), frameworkOf);
    if (!cells.length) return;
    // Runs of adjacent tagged cells, found before any cell moves into a panel.
    var runs = [];
    cells.forEach(function (cell, i) {
      if (i === 0 || cell.previousElementSibling !== cells[i - 1]) runs.push([]);
      runs[runs.length - 1].push(cell);
    });
    runs.forEach(tabSet);
    choose(remembered() || DEFAULT, false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
